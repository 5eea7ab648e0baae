-- People who left their details at an event: no key, as in the original destination's
-- configuration. Each distinct row is created once; a re-run of the same data sends nothing.
select full_name, email, job_title
from {{ ref('raw_event_leads') }}

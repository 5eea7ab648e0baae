"""``values:`` templates: parsed and compiled once, rendered in Jinja's immutable sandbox.

Templates come from YAML that arrives in pull requests, so they can reach nothing but the
row's columns and the filters in :data:`FILTERS`: no globals (``range``, ``cycler``, ...), no
attribute or item whose name starts with ``_``, no unknown filter. Each of those is found when
the template is parsed and reported as a config problem at its YAML path; whatever the
sandbox still refuses while rendering raises :class:`TemplateRefused`.

dbt renders ``{{ }}`` in YAML itself before the manifest is written, so templates use
``[[ ]]`` (and ``[% %]`` for blocks). A ``{{ }}`` template protected by ``{% raw %}`` arrives
intact and works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The documented filters; everything else is refused when the template is parsed.
FILTERS = (
    "capitalize",
    "default",
    "join",
    "lower",
    "replace",
    "round",
    "string",
    "title",
    "trim",
    "truncate",
    "upper",
)


def _environment(**syntax: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, **syntax
    )
    env.globals.clear()
    env.filters = {name: DEFAULT_FILTERS[name] for name in FILTERS}
    return env


BRACKET_ENV = _environment(
    variable_start_string="[[",
    variable_end_string="]]",
    block_start_string="[%",
    block_end_string="%]",
    comment_start_string="[#",
    comment_end_string="#]",
)
CURLY_ENV = _environment()


class TemplateInvalid(ValueError):
    """The template cannot be used; ``str()`` says why (for the config problem)."""


class TemplateRefused(Exception):
    """The sandbox refused something while rendering (an unsafe attribute or call)."""


def template_env(text: str) -> ImmutableSandboxedEnvironment | None:
    """The template syntax ``text`` uses, or None when it is a plain constant."""
    if "[[" in text or "[%" in text:
        return BRACKET_ENV
    if "{{" in text or "{%" in text:
        return CURLY_ENV
    return None


def is_template(text: object) -> bool:
    return isinstance(text, str) and template_env(text) is not None


@dataclass(frozen=True)
class Template:
    """A compiled template and the row columns it reads."""

    text: str
    columns: tuple[str, ...]
    _compiled: jinja2.Template

    def render(self, row: Mapping[str, object]) -> str:
        """The rendered text (NULL columns as empty text), stripped."""
        context = {c: ("" if row.get(c) is None else row.get(c)) for c in self.columns}
        try:
            return self._compiled.render(context).strip()
        except SecurityError as exc:
            raise TemplateRefused(str(exc)) from None


def _unsafe_names(tree: nodes.Template) -> list[str]:
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        if name is not None and name.startswith("_"):
            found.append(name)
    return found


def compile_template(text: str) -> Template:
    """Parse, check and compile ``text``; :class:`TemplateInvalid` says what is wrong."""
    env = template_env(text)
    if env is None:
        raise TemplateInvalid("not a template")
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateInvalid(f"invalid template: {exc.message} (line {exc.lineno})") from None
    unsafe = _unsafe_names(tree)
    if unsafe:
        raise TemplateInvalid(
            f"invalid template: {unsafe[0]!r} is not allowed (templates may only read the "
            "row's columns: names starting with _ are internals)"
        )
    for node in tree.find_all(nodes.Filter):
        if node.name not in env.filters:
            raise TemplateInvalid(
                f"invalid template: unknown filter {node.name!r}, expected one of "
                f"{', '.join(FILTERS)}"
            )
    for node in tree.find_all(nodes.Test):
        if node.name not in env.tests:
            raise TemplateInvalid(f"invalid template: unknown test {node.name!r}")
    columns = tuple(sorted(jinja2.meta.find_undeclared_variables(tree)))
    try:
        compiled = env.from_string(tree)
    except jinja2.TemplateError as exc:
        raise TemplateInvalid(f"invalid template: {exc}") from None
    return Template(text, columns, compiled)

"""The CLI imports without fcntl or cryptography; the token-store lock works without fcntl."""

import subprocess
import sys
import threading
import time

import pytest

from dbt_rdcrm.auth.filelock import FileLock, LockTimeout

NO_FCNTL_NO_CRYPTOGRAPHY = """
import sys
sys.modules["fcntl"] = None          # as on Windows: `import fcntl` raises ImportError
sys.modules["cryptography"] = None   # the optional extra dbt-rdcrm[ci] is not installed
import dbt_rdcrm.cli
from dbt_rdcrm.auth.store import TokenStore
from dbt_rdcrm.auth.filelock import _default_backend
print(_default_backend())
"""


def test_the_cli_imports_without_fcntl_or_cryptography():
    done = subprocess.run(
        [sys.executable, "-c", NO_FCNTL_NO_CRYPTOGRAPHY], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("exclusive", "msvcrt")


def test_a_state_key_without_cryptography_says_which_extra_to_install():
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from dbt_rdcrm.auth.warehouse_slot import cipher_from_key\n"
        "from dbt_rdcrm.redaction import Secret\n"
        "from dbt_rdcrm.errors import AuthError\n"
        "try:\n    cipher_from_key(Secret('k' * 40))\n"
        "except AuthError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'dbt-rdcrm[ci]'" in done.stdout, done.stderr


@pytest.mark.parametrize("backend", ["exclusive", "fcntl"])
def test_the_lock_is_exclusive(tmp_path, backend):
    path = tmp_path / "store.lock"
    held, order = FileLock(path, backend=backend), []
    held.acquire()

    def other():
        with FileLock(path, backend=backend, timeout=10):
            order.append("other")

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(0.3)
    order.append("first")
    held.release()
    thread.join(10)
    assert order == ["first", "other"]


def test_an_exclusive_lock_left_by_a_dead_process_is_broken(tmp_path):
    path = tmp_path / "store.lock"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    import json
    import socket

    path.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with FileLock(path, backend="exclusive", timeout=5):
        assert json.loads(path.read_text())["pid"] != int(dead.stdout)
    assert not path.exists()


def test_a_live_exclusive_lock_times_out(tmp_path):
    path = tmp_path / "store.lock"
    with FileLock(path, backend="exclusive"), pytest.raises(LockTimeout):
        FileLock(path, backend="exclusive", timeout=0.2).acquire()

"""Starting and stopping the server in-process."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from dbt_rdcrm.emulator import Emulator


def test_port_zero_picks_a_free_port_and_urls_use_it():
    with Emulator(rate_limit=0) as emulator:
        port = int(emulator.url.rsplit(":", 1)[1])
        assert port > 0
        assert emulator.url == f"http://127.0.0.1:{port}"
        assert emulator.base_url == f"http://127.0.0.1:{port}/crm/v2"


def test_context_manager_serves_requests():
    with Emulator(rate_limit=0) as emulator:
        headers = {"Authorization": "Bearer emulator-token"}
        assert requests.get(emulator.base_url + "/users", headers=headers, timeout=5).ok


def test_stop_closes_the_listening_socket():
    emulator = Emulator(rate_limit=0).start()
    port = int(emulator.url.rsplit(":", 1)[1])
    emulator.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_stop_cuts_open_keep_alive_connections():
    emulator = Emulator(rate_limit=0).start()
    with requests.Session() as session:
        session.get(emulator.url + "/_emulator/state", timeout=5)
        emulator.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(emulator.url + "/_emulator/state", timeout=5)


def test_stop_is_idempotent():
    emulator = Emulator(rate_limit=0).start()
    emulator.stop()
    emulator.stop()


def test_restart_keeps_the_port_and_the_records():
    emulator = Emulator(rate_limit=0).start()
    url = emulator.url
    emulator.stop()
    with emulator:
        assert emulator.url == url
        assert requests.get(url + "/_emulator/state", timeout=5).json()["organizations"]


def test_stop_from_another_thread_ends_serve_forever():
    emulator = Emulator(rate_limit=0)
    url = emulator.url
    serving = threading.Thread(target=emulator.serve_forever)
    serving.start()
    assert requests.get(url + "/_emulator/state", timeout=5).ok
    emulator.stop()
    serving.join(timeout=5)
    assert not serving.is_alive()

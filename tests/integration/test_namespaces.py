"""namespaces.* over the wire, from a stock msgpack client."""

from __future__ import annotations

import pytest

from .daemon import DaemonProcess, RawConnection, RemoteError


def test_create_get_list_update_delete(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        created = c.call("namespaces.create", {"namespace": {"name": "ns1", "labels": {"a": "1"}}})
        assert created == {"namespace": {"name": "ns1", "labels": {"a": "1"}}}
        assert c.call("namespaces.get", {"name": "ns1"})["namespace"]["labels"] == {"a": "1"}
        names = [n["name"] for n in c.call("namespaces.list", {})["namespaces"]]
        assert "ns1" in names
        updated = c.call(
            "namespaces.update",
            {
                "namespace": {"name": "ns1", "labels": {"b": "2", "a": ""}},
                "update_mask": {"paths": ["labels.a", "labels.b"]},
            },
        )
        assert updated["namespace"]["labels"] == {"b": "2"}
        assert c.call("namespaces.delete", {"name": "ns1"}) == {}
        with pytest.raises(RemoteError) as err:
            c.call("namespaces.get", {"name": "ns1"})
        assert err.value.code == "NotFound"


def test_errors_carry_containerd_codes(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        c.call("namespaces.create", {"namespace": {"name": "dup"}})
        cases = [
            ("namespaces.create", {"namespace": {"name": "dup"}}, "AlreadyExists"),
            ("namespaces.create", {"namespace": {"name": "bad/name"}}, "InvalidArgument"),
            ("namespaces.create", {"namespace": {"name": "x" * 77}}, "InvalidArgument"),
            ("namespaces.delete", {"name": "missing"}, "NotFound"),
            (
                "namespaces.update",
                {"namespace": {"name": "dup"}, "update_mask": {"paths": ["name"]}},
                "InvalidArgument",
            ),
            (
                "namespaces.create",
                {"namespace": {"name": "big", "labels": {"k": "v" * 5000}}},
                "InvalidArgument",
            ),
        ]
        for method, request, code in cases:
            with pytest.raises(RemoteError) as err:
                c.call(method, request)
            assert err.value.code == code, (method, request, err.value.message)


def test_namespaces_survive_restart(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        c.call("namespaces.create", {"namespace": {"name": "kept", "labels": {"x": "y"}}})
    daemon.kill()
    daemon.start()
    with RawConnection(daemon.address) as c:
        assert c.call("namespaces.get", {"name": "kept"})["namespace"]["labels"] == {"x": "y"}

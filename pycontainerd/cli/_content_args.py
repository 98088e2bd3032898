"""The arguments of ``pyctr content`` and ``pyctr leases`` (kept apart from the
commands so that building the parser imports nothing heavy)."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    """Register ``content`` and ``leases`` on ``pyctr``'s subparsers."""
    ct = sub.add_parser("content", help="manage content")
    ct_sub = ct.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = ct_sub.add_parser("ls", aliases=["list"], help="list blobs")
    ls.add_argument("-q", "--quiet", action="store_true", help="print only the digests")
    ls.add_argument("filters", nargs="*", metavar="FILTER")
    get = ct_sub.add_parser("get", help="write a blob to stdout")
    get.add_argument("digest")
    ing = ct_sub.add_parser("ingest", help="write stdin into the store as REF")
    ing.add_argument("--expected-size", type=int, default=0)
    ing.add_argument("--expected-digest", default="")
    ing.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    ing.add_argument("ref")
    act = ct_sub.add_parser("active", help="ingests in progress")
    act.add_argument("filters", nargs="*", metavar="FILTER")
    rm = ct_sub.add_parser("rm", aliases=["delete", "del", "remove"], help="remove blobs")
    rm.add_argument("digests", nargs="+", metavar="DIGEST")
    lb = ct_sub.add_parser("label", help="set labels of a blob (KEY= removes one)")
    lb.add_argument("digest")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")

    le = sub.add_parser("leases", aliases=["lease"], help="manage leases")
    le_sub = le.add_subparsers(dest="action", required=True, metavar="ACTION")
    lls = le_sub.add_parser("ls", aliases=["list"], help="list leases")
    lls.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
    lls.add_argument("filters", nargs="*", metavar="FILTER")
    lc = le_sub.add_parser("create", help="create a lease")
    lc.add_argument("--id", default="", help="the lease id (default: generated)")
    lc.add_argument("--expires", "-x", default="24h", help="expiry, e.g. 1h30m; 0 = never")
    lc.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    lr = le_sub.add_parser("rm", aliases=["delete", "remove"], help="delete leases")
    lr.add_argument("--sync", action="store_true", help="collect garbage before returning")
    lr.add_argument("ids", nargs="+", metavar="ID")

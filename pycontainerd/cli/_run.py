"""``pyctr run`` and ``pyctr containers``, as ``ctr run`` and ``ctr containers``.

``run IMAGE ID [ARGS...]`` creates container ``ID`` from the local image (its
snapshot prepared from the image, the spec from the image config and the
options), creates and starts its task with this process's stdio (or a pty
with ``-t``: the local terminal in raw mode, ``SIGWINCH`` forwarded as
``resize_pty``), forwards other signals to the task, waits, deletes the task
(and the container with ``--rm``) and exits with the container's exit code.
Everything after ``IMAGE ID`` is the container's command, untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pycontainerd.api import errdefs

from ._commands import Output, _fmt_labels, _labels

if TYPE_CHECKING:
    from pycontainerd import oci
    from pycontainerd.client import Client, Container, ExitStatus, Process, cio

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
HANDLED = {*FORWARDED, signal.SIGWINCH}


def parse_mount(text: str) -> dict[str, Any]:
    """``type=bind,src=/a,dst=/b,options=rbind:ro`` as an OCI mount.

    Raises:
        errdefs.InvalidArgument: a field that is not ``key=value``, an unknown
            key, or no destination.
    """
    m: dict[str, Any] = {"type": "none", "source": "", "destination": "", "options": []}
    for field in text.split(","):
        key, sep, value = field.partition("=")
        if not sep:
            raise errdefs.InvalidArgument(f"mount {text!r}: {field!r} is not key=value")
        if key == "type":
            m["type"] = value
        elif key in ("src", "source"):
            m["source"] = value
        elif key in ("dst", "destination", "target"):
            m["destination"] = value
        elif key == "options":
            m["options"] = [o for o in value.split(":") if o]
        else:
            raise errdefs.InvalidArgument(f"mount {text!r}: unknown key {key!r}")
    if not m["destination"]:
        raise errdefs.InvalidArgument(f"mount {text!r}: a destination (dst=) is required")
    return m


def spec_opts(args: argparse.Namespace) -> list[oci.SpecOpt]:
    """The spec options of ``run``/``containers create``'s flags."""
    from pycontainerd import oci  # here: ``containers ls`` and ``tasks`` need no spec code

    opts: list[oci.SpecOpt] = []
    if args.env_file:
        opts.append(oci.with_env_file(args.env_file))
    if args.env:
        opts.append(oci.with_env(args.env))
    if args.cwd:
        opts.append(oci.with_process_cwd(args.cwd))
    if args.user:
        opts.append(oci.with_user(args.user))  # uid[:gid]
    if args.tty:
        opts.append(oci.with_tty())
    if args.mount:
        opts.append(oci.with_mounts([parse_mount(m) for m in args.mount]))
    if args.net_host:
        opts.append(oci.with_host_namespace("network"))
    if args.memory_limit:
        opts.append(oci.with_memory_limit(args.memory_limit))
    if args.cpus:
        opts.append(oci.with_cpus(args.cpus))
    if args.read_only:
        opts.append(oci.with_rootfs_readonly())
    return opts


def create_container(client: Client, args: argparse.Namespace) -> Container:
    options = {"binary_name": args.runc_binary} if args.runc_binary else None
    return client.new_container(
        args.id,
        image=args.image,
        args=args.args or None,
        spec_opts=spec_opts(args),
        snapshotter=args.snapshotter,
        labels=_labels(args.label),
        runtime=args.runtime,
        runtime_options=options,
    )


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block the forwarded signals (threads started inside inherit the mask), so
    that :func:`wait_forwarding` takes them with ``sigtimedwait``."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    try:
        yield
    finally:
        while signal.sigtimedwait(HANDLED, 0) is not None:
            pass  # drop what arrived after the task exited
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    """The local terminal in raw mode (``console.SetRaw``), restored after."""
    fd = sys.stdin.fileno() if enabled else -1
    if fd < 0 or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def resize(proc: Process) -> None:
    """The task's pty to the local terminal's size."""
    for fd in (0, 1):
        if os.isatty(fd):
            size = os.get_terminal_size(fd)
            with contextlib.suppress(errdefs.ErrdefsError):
                proc.resize(size.columns, size.lines)
            return


def wait_forwarding(proc: Process, tty: bool) -> ExitStatus:
    """Wait for ``proc``, forwarding signals to it (``SIGWINCH``: a resize with ``tty``).

    Call inside :func:`signals_blocked`.
    """
    result: list[ExitStatus | BaseException] = []

    def waiter() -> None:
        try:
            result.append(proc.wait())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    if tty:
        resize(proc)
    while thread.is_alive():
        info = signal.sigtimedwait(HANDLED, 0.1)
        if info is None:
            continue
        if info.si_signo == signal.SIGWINCH:
            if tty:
                resize(proc)
            continue
        with contextlib.suppress(errdefs.NotFound):
            proc.kill(info.si_signo)
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def task_io(detach: bool, tty: bool) -> cio.Creator:
    from pycontainerd.client import cio

    if detach:
        return cio.null()
    return cio.terminal() if tty else cio.stdio()


def run(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.rm and args.detach:
        raise errdefs.InvalidArgument("flags --detach and --rm cannot be specified together")
    ctr = create_container(client, args)
    try:
        with signals_blocked():
            task = ctr.new_task(task_io(args.detach, args.tty))
            if args.detach:
                task.start()
                return 0
            try:
                with raw_terminal(args.tty):
                    if args.tty:
                        resize(task)  # the pty exists from create: sized before it runs
                    task.start()
                    status = wait_forwarding(task, args.tty)
            finally:
                with contextlib.suppress(errdefs.ErrdefsError):
                    task.delete(kill=True)
                if task.io is not None:
                    task.io.close()  # even when the daemon has gone: no FIFOs left
        return status.code
    finally:
        if args.rm:
            ctr.delete()


def containers(client: Client, args: argparse.Namespace, out: Output) -> None:
    action = args.action
    if action in ("ls", "list"):
        found = client.containers.list(args.filters)
        if out.json_mode:
            out.json(found)
        elif args.quiet:
            for c in found:
                out.line(c.id)
        else:
            rows = [[c.id, c.image or "-", c.runtime.name] for c in found]
            out.table(["CONTAINER", "IMAGE", "RUNTIME"], rows)
    elif action == "create":
        create_container(client, args)
    elif action in ("rm", "delete", "del", "remove"):
        for id in args.ids:
            client.load_container(id).delete(snapshot_cleanup=not args.keep_snapshot)
    elif action == "info":
        record = client.containers.get(args.id)
        if args.spec:
            out.json(record.spec.value if record.spec is not None else {})
        else:
            out.json(record)
    elif action == "label":
        record = client.containers.label(args.id, _labels(args.labels))
        if out.json_mode:
            out.json(record.labels)
        else:
            out.line(_fmt_labels(record.labels))


COMMANDS = {
    "run": run,
    "containers": containers,
    "container": containers,
    "c": containers,
}

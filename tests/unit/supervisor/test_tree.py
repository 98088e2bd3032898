from __future__ import annotations

import trio

from pycontainerd.supervisor import ChildSpec, KeyedSupervisor, Supervisor, format_tree, walk_tree

from ._actors import Add, Counter


async def test_walk_tree_lists_supervisors_actors_and_keyed_children(
    autojump_clock: object,
) -> None:
    keyed: KeyedSupervisor[str] = KeyedSupervisor("ingests", lambda key: Counter(name=key))
    root = Supervisor(
        "root",
        [
            ChildSpec.for_actor(lambda: Counter(name="metadata", mailbox_size=8), id="metadata"),
            ChildSpec.for_supervisor(keyed),
        ],
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await keyed.call("layer-1", Add(1))
        await trio.sleep(2)
        infos = {i.path: i for i in walk_tree(root)}
        assert list(infos) == ["root", "root/metadata", "root/ingests", "root/ingests/layer-1"]
        md = infos["root/metadata"]
        assert (md.kind, md.mailbox_capacity, md.restarts, md.status) == (
            "Counter",
            8,
            0,
            "running",
        )
        assert md.age_seconds == 2
        assert infos["root/ingests"].kind == "KeyedSupervisor"
        text = format_tree(list(infos.values()))
        assert "    root/ingests/layer-1 [Counter] mailbox=0/4 peak=0 restarts=0" in text
        await root.stop()

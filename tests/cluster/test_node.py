"""Admission and the directory on a real nats-server: seats by compare-and-set across
processes, overflow instances, presence, leaving, and a NATS restart that loses the store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from server.cluster.local import NatsServer
from server.cluster.node import Admission, ClusterNode, ClusterUnavailable

ADMITTER = Path(__file__).with_name("admitter.py")


async def node(server: NatsServer, pid: str, **kw) -> ClusterNode:
    return await ClusterNode(server.url, f"ws://{pid}.test/", capacity=1000, process_id=pid, **kw).start()


async def seat(n: ClusterNode, admission: Admission, visitor: str, name: str) -> bool:
    """What the gate does for a visitor who arrives with ``admission``: take the seat, say where they are."""
    if not await n.confirm(admission):
        return False
    await n.present(visitor, name, admission.instance)
    return True


async def test_seats_confirm_leave_and_presence(nats_server: NatsServer) -> None:
    a = await node(nats_server, "a")
    b = await node(nats_server, "b")
    try:
        first = await a.open_instance("silk-road", 2)
        assert set(await a.processes()) == {"a", "b"}
        one = await b.admit("silk-road", 2)
        two = await b.admit("silk-road", 2)
        assert (one.instance, one.url) == (first, "ws://a.test/")
        assert two.instance == first
        assert await seat(a, one, "v-1", "Aigerim") is True
        assert await seat(a, one, "v-1", "Aigerim") is False  # a token is good once
        where = await b.find("v-1")
        assert (where.name, where.hall, where.instance, where.url) == ("Aigerim", "silk-road", first.id, "ws://a.test/")
        maritime = await a.open_instance("maritime", 2)
        await a.relocate("v-1", maritime)  # a portal hop inside process a
        assert (await b.find("v-1")).hall == "maritime"
        await a.relocate("v-1", first)
        third = await b.admit("silk-road", 2)  # first is full: an overflow opens on b (the only other process)
        assert (third.instance.id, third.instance.process) == ("silk-road-i2", "b")
        await a.leave(first, "v-1")
        assert await b.find("v-1") is None
        assert (await a.seats(first.id)).held == {}
        friend = await b.admit("silk-road", 2, friend="v-1")  # gone: no preference, first instance with room
        assert friend.instance == first
    finally:
        await a.stop()
        await b.stop()


async def test_namesakes_at_two_processes_keep_their_own_presence(nats_server: NatsServer) -> None:
    """Two visitors shown as "Li Wei" at two processes: neither overwrites the other, and the
    one who leaves takes only their own presence with them."""
    a = await node(nats_server, "a")
    b = await node(nats_server, "b")
    try:
        here, there = await a.open_instance("silk-road", 5), await b.open_instance("maritime", 5)
        assert await seat(a, await a.admit("silk-road", 5), "v-li-1", "Li Wei")
        assert await seat(b, await b.admit("maritime", 5), "v-li-2", "Li Wei")
        assert await seat(a, await a.admit("silk-road", 5), "v-other", "Li Weixin")
        named = await b.find_named("LI WEI")  # ignoring case, by visitor id
        assert [(pr.visitor, pr.process, pr.hall) for pr in named] == [("v-li-1", "a", "silk-road"),
                                                                       ("v-li-2", "b", "maritime")]
        assert (await a.find("v-li-2")).process == "b"
        await b.present("v-li-1", "Li Wei", there)  # v-li-1 handed off to b under the same name...
        await a.leave(here, "v-li-1")  # ...and a lets go: b's record of them stays
        assert [(pr.visitor, pr.process) for pr in await a.find_named("li wei")] == [("v-li-1", "b"), ("v-li-2", "b")]
        await b.leave(there, "v-li-2")
        assert [pr.visitor for pr in await a.find_named("Li Wei")] == ["v-li-1"]
        assert await a.find("v-li-2") is None and (await a.find("v-other")).name == "Li Weixin"
    finally:
        await a.stop()
        await b.stop()


async def test_a_hand_off_that_writes_the_presence_between_the_givers_read_and_delete_keeps_it(
        nats_server: NatsServer) -> None:
    """Seen in `make cluster` with portal bots: the taker wrote the visitor's presence after the
    giver read it, the giver's delete (compare-and-set on the revision it read) was refused with
    JetStream's 'wrong last sequence', which escaped leave() as an unretrieved task error."""
    a = await node(nats_server, "a")
    b = await node(nats_server, "b")
    try:
        here, there = await a.open_instance("silk-road", 5), await b.open_instance("maritime", 5)
        assert await seat(a, await a.admit("silk-road", 5), "v-1", "Aigerim")
        kv = a.kv["expo_presence"]
        read = kv.get

        async def read_then_hand_off(key: str, *args, **kw):
            entry = await read(key, *args, **kw)
            await b.present("v-1", "Aigerim", there)  # the taker writes while the giver holds the old revision
            return entry

        kv.get = read_then_hand_off  # type: ignore[method-assign]
        try:
            await a.leave(here, "v-1")  # lets go without an error...
        finally:
            kv.get = read  # type: ignore[method-assign]
        where = await a.find("v-1")  # ...and the taker's record stays
        assert where is not None and (where.process, where.hall) == ("b", "maritime")
    finally:
        await a.stop()
        await b.stop()


async def test_a_friend_instance_is_chosen_when_it_has_room(nats_server: NatsServer) -> None:
    a = await node(nats_server, "a")
    b = await node(nats_server, "b")
    brief = await node(nats_server, "brief", seat_ttl=2.0, instances_per_hall=0)  # its reservations lapse
    try:
        first = await a.open_instance("maritime", 2)
        second = await b.open_instance("maritime", 2)
        assert {(await brief.admit("maritime", 2)).instance.id for _ in range(2)} == {first.id}
        placed = await b.admit("maritime", 2)  # the first is full for now
        assert placed.instance == second and await seat(b, placed, "v-friend", "Friend")
        await asyncio.sleep(2.2)  # the two visitors who never came gave their seats back
        assert (await a.admit("maritime", 2)).instance == first
        assert (await a.admit("maritime", 2, friend="v-friend")).instance == second
        assert (await a.admit("maritime", 2, friend="v-friend")).instance == first  # the friend's is full now
    finally:
        for n in (a, b, brief):
            await n.stop()


async def test_a_process_that_stops_leaves_the_directory(nats_server: NatsServer) -> None:
    a = await node(nats_server, "a")
    b = await node(nats_server, "b")
    await b.open_instance("silk-road", 10)
    await b.stop()
    try:
        assert set(await a.processes()) == {"a"}
        assert (await a.hall("silk-road")).instances == ()
        ticket = await a.admit("silk-road", 10)  # no live instance: one opens here
        assert (ticket.instance.id, ticket.instance.process) == ("silk-road-i2", "a")
    finally:
        await a.stop()


async def test_a_process_stops_promptly_when_nats_is_gone(nats_factory) -> None:
    """Its clean leave is bounded: an operator's Ctrl-C never waits on a dead NATS."""
    server = nats_factory()
    a = await node(server, "a")
    first = await a.open_instance("silk-road", 10)
    assert await seat(a, await a.admit("silk-road", 10), "v-1", "Bolat")
    assert first.id in a.instances
    server.kill()
    started = time.monotonic()
    await a.stop()
    assert time.monotonic() - started < 4 + 1  # LEAVE_TIMEOUT and the connection's close


async def test_no_nats_is_a_clear_error() -> None:
    from server.cluster.local import free_port

    with pytest.raises(ClusterUnavailable, match="does not answer"):
        await ClusterNode(f"nats://127.0.0.1:{free_port()}", "ws://x/", 10).start(connect_timeout=1.5)


def test_500_joins_at_once_across_processes_never_exceed_the_cap(nats_server: NatsServer) -> None:
    """Five processes ask for 100 seats each in the same instant, cap 100: the first instance
    takes exactly 100, the rest go to overflow instances the directory opens (one per
    process at most), no instance is ever over its cap, and a 501st visitor is refused."""
    start_at = time.time() + 4.0
    procs = [subprocess.Popen([sys.executable, str(ADMITTER), nats_server.url, f"p{i}", "silk-road", "100", "100",
                               str(start_at), *(["open"] if i == 0 else [])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(5)]
    try:
        results = [json.loads(proc.stdout.readline() or "null") for proc in procs]
        assert all(results), [proc.stderr.read() for proc in procs if proc.poll() is not None]
        admitted = [a for r in results for a in r["admitted"]]
        assert len(admitted) == 500 and None not in admitted
        per_instance = Counter(a["instance"] for a in admitted)
        assert per_instance["silk-road-i1"] == 100
        assert sorted(per_instance.values()) == [100] * 5
        assert len({a["token"] for a in admitted}) == 500
        by_process = Counter(a["process"] for a in admitted)
        assert sorted(by_process.values()) == [100] * 5  # one instance of the hall per process

        async def check() -> None:
            probe = await node(nats_server, "probe", instances_per_hall=0)
            try:
                for instance_id in per_instance:
                    seats = await probe.seats(instance_id)
                    assert len(seats.pending) == 100 and seats.cap == 100
                assert await probe.admit("silk-road", 100) is None  # every process has its instance, all full
            finally:
                await probe.stop()

        asyncio.run(check())
        print("took per process (s):", [round(r["took"], 2) for r in results])
    finally:
        for proc in procs:
            proc.communicate(timeout=30)


async def test_nats_restart_with_an_empty_store_rebuilds_the_directory(nats_factory) -> None:
    server = nats_factory()
    a = await node(server, "a", heartbeat=0.3)
    b = await node(server, "b", heartbeat=0.3)
    try:
        first = await a.open_instance("silk-road", 10)
        ticket = await b.admit("silk-road", 10)
        assert await seat(a, ticket, "v-1", "Bolat")
        await b.open_instance("maritime", 10)
        server.kill()
        import shutil

        shutil.rmtree(server.root / "jetstream")  # the store is lost with it
        server.start()
        deadline = time.monotonic() + 15
        while True:
            try:
                if (set(await a.processes()) == {"a", "b"} and (await a.hall("silk-road")).instances == (first,)
                        and (await a.seats(first.id)).held == {"a": 1} and await b.find("v-1") is not None
                        and [i.id for i in (await a.hall("maritime")).instances] == ["maritime-i1"]):
                    break
            except Exception:
                pass
            assert time.monotonic() < deadline, "the directory did not rebuild within 15 s"
            await asyncio.sleep(0.2)
        assert a.rebuilds >= 1 and b.rebuilds >= 1
        assert (await b.admit("silk-road", 10)).instance == first  # admission works again
    finally:
        await a.stop()
        await b.stop()


async def test_a_process_killed_with_sigkill_leaves_the_directory_by_its_ttl(nats_server: NatsServer) -> None:
    """No goodbye: its record expires (process_ttl), its instance stops counting, and the
    next visitor is seated in an instance that opens on a live process."""
    a = await node(nats_server, "a", process_ttl=2.0)  # the first process sets the directory's TTL
    killed = subprocess.Popen([sys.executable, str(ADMITTER), nats_server.url, "doomed", "silk-road", "3", "3",
                               str(time.time()), "open"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        taken = json.loads(await asyncio.get_running_loop().run_in_executor(None, killed.stdout.readline))
        assert {x["instance"] for x in taken["admitted"]} == {"silk-road-i1"}
        assert await a.admit("silk-road", 3) is not None  # a opens the overflow: i1 is full
        assert "doomed" in await a.processes()
        await asyncio.sleep(3.0)  # past the TTL: its heartbeat (shortened to TTL / 3) kept it in
        assert "doomed" in await a.processes()
        killed.kill()
        killed.wait(10)
        deadline = time.monotonic() + 15
        while "doomed" in await a.processes():
            assert time.monotonic() < deadline, "the killed process is still in the directory"
            await asyncio.sleep(0.2)
        hall = await a.hall("silk-road")
        assert [i.process for i in hall.live(frozenset(await a.processes()))] == ["a"]
    finally:
        await a.stop()


async def test_a_process_registering_while_another_opens_keeps_its_instance(nats_server: NatsServer) -> None:
    """b reads the live processes; a registers and opens its instance; b's open must not take
    a's instance for a dead process's (the hall record would lose it until a's next heartbeat)."""
    b = await node(nats_server, "b")
    a = ClusterNode(nats_server.url, "ws://a.test/", capacity=1000, process_id="a")
    read_live = b.processes
    reads = 0

    async def a_registers_right_after_the_first_read() -> dict:
        nonlocal reads
        live = await read_live()
        reads += 1
        if reads == 1:
            await a.start()
            await a.open_instance("silk-road", 10)
        return live

    b.processes = a_registers_right_after_the_first_read  # type: ignore[method-assign]
    try:
        await b.open_instance("silk-road", 10)
        b.processes = read_live  # type: ignore[method-assign]
        hall = await b.hall("silk-road")
        assert sorted(i.process for i in hall.live(frozenset(await b.processes()))) == ["a", "b"]
    finally:
        await a.stop()
        await b.stop()


async def test_a_hop_inside_a_process_moves_the_seat_while_the_hall_has_room(nats_server: NatsServer) -> None:
    """The seat follows a visitor who walks through a portal into another of its process's
    instances, so each instance counts who is in it; into a full one it stays where it was."""
    a = await node(nats_server, "a")
    try:
        silk = await a.open_instance("silk-road", 2)
        maritime = await a.open_instance("maritime", 1)
        for visitor in ("v-1", "v-2"):
            assert await seat(a, await a.admit("silk-road", 2), visitor, visitor)
        assert (await a.seats(silk.id)).held == {"a": 2}
        assert await a.move_seat("v-1", silk, maritime) is True
        assert ((await a.seats(silk.id)).held, (await a.seats(maritime.id)).held) == ({"a": 1}, {"a": 1})
        assert (await a.find("v-1")).instance == maritime.id
        assert await a.move_seat("v-2", silk, maritime) is False  # maritime is full (cap 1)
        assert ((await a.seats(silk.id)).held, (await a.seats(maritime.id)).held) == ({"a": 1}, {"a": 1})
        assert (await a.find("v-2")).hall == "maritime"  # presence says where they are all the same
        assert (await a.seats(maritime.id)).free(time.time()) == 0  # so newcomers go to another instance
        assert await a.move_seat("v-1", maritime, silk) is True  # and back: silk has room again
        assert ((await a.seats(silk.id)).held, (await a.seats(maritime.id)).held) == ({"a": 2}, {})
    finally:
        await a.stop()


async def test_a_burst_of_arrivals_is_confirmed_together_each_token_once(nats_server: NatsServer) -> None:
    """60 visitors arrive at once with their seats (and one token twice, one never granted):
    each good token becomes a seat held here exactly once, in a few compare-and-sets of the
    instance's seats record rather than one (and its retries) per visitor."""
    a = await node(nats_server, "a")
    try:
        instance = await a.open_instance("silk-road", 100)
        admissions = [await a.admit("silk-road", 100) for _ in range(60)]
        writes = 0
        change_seats = a._change_seats

        async def counted(inst, change):
            nonlocal writes
            writes += 1
            return await change_seats(inst, change)

        a._change_seats = counted  # type: ignore[method-assign]
        forged = Admission(instance, admissions[0].url, "never-granted", admissions[0].expires_at)
        results = await asyncio.gather(*(a.confirm(x) for x in [*admissions, admissions[0], forged]))
        assert results.count(True) == 60 and results[-1] is False
        assert results[0] != results[60]  # the token presented twice: one of the two takes the seat
        seats = await a.seats(instance.id)
        assert seats.held == {"a": 60} and seats.pending == {}
        assert a.held == {instance.id: 60} and a.load == 60
        assert writes <= 5, writes
    finally:
        await a.stop()

"""The directory's upkeep under load, on a real nats-server: a process whose record expired
still seats visitors in its own instance; a slow re-assertion does not let the record expire;
the re-assertion of held seats never writes a count made stale meanwhile; and stop ends even
when a heartbeat's reply and its cancellation arrive in the same turn of the event loop."""

from __future__ import annotations

import asyncio
import functools

from server.cluster.local import NatsServer
from server.cluster.node import PROCESSES, SEATS, ClusterNode
from server.cluster.seats import Seats


async def node(server: NatsServer, pid: str, **kw) -> ClusterNode:
    return await ClusterNode(server.url, f"ws://{pid}.test/", capacity=1000, process_id=pid, **kw).start()


async def test_a_process_whose_record_expired_still_seats_visitors_in_its_own_instance(nats_server: NatsServer):
    """Under load a heartbeat came late, the record expired, and the process refused every
    newcomer with 'every instance of the hall is full' though its instance had room: it
    looked dead to itself, so its instance was not live and no process could open another."""
    a = await node(nats_server, "a", heartbeat=60.0, prefer_local=True)
    try:
        instance = await a.open_instance("silk-road", 10)
        await a.kv[PROCESSES].delete(a.id)  # as its TTL does when the heartbeat is late
        admission = await a.admit("silk-road", 10)
        assert admission is not None and admission.instance == instance
        assert await a.confirm(admission)
    finally:
        await a.stop()


async def test_the_record_stays_fresh_while_the_directory_upkeep_is_slow(nats_factory):
    """The record's put does not wait behind the re-assertion of instances and seats (a
    compare-and-set on seats a burst of joins is writing took 31 s under load)."""
    server = nats_factory()
    a = await node(server, "a", heartbeat=0.2, process_ttl=1.0)
    probe = await node(server, "probe", heartbeat=0.2)
    stuck = asyncio.Event()
    change_hall = a._change_hall

    async def slow_change_hall(*args, **kwargs):
        await stuck.wait()  # the upkeep is stuck here until the test ends
        return await change_hall(*args, **kwargs)

    try:
        await a.open_instance("silk-road", 10)
        a._change_hall = slow_change_hall  # type: ignore[method-assign]
        for _ in range(15):  # 3 s: three times the record's TTL
            await asyncio.sleep(0.2)
            assert "a" in await probe.processes(), "the record expired while the upkeep was slow"
    finally:
        stuck.set()
        await probe.stop()
        await a.stop()


async def test_held_seats_are_put_back_as_they_are_when_written_not_as_they_were(nats_server: NatsServer):
    """The heartbeat puts back the seats we hold in each instance. It took the counts at its
    start: a visitor confirmed in the second instance while it wrote the first was written
    away from the second (held 1 for 2 visitors), so one seat more could be granted there
    than the cap: an instance over its cap, by a real race."""
    a = await node(nats_server, "a", heartbeat=60.0)
    try:
        first = await a.open_instance("silk-road", 10)
        second = await a.open_instance("maritime", 10)
        for instance in (first, second):
            admission = await a.admit(instance.hall, 10)
            assert admission is not None and admission.instance == instance and await a.confirm(admission)
        writing_first, go_on = asyncio.Event(), asyncio.Event()
        change_seats = a._change_seats

        async def paused_change_seats(instance, change):
            if instance == first and isinstance(change, functools.partial) and change.func == a._hold:
                writing_first.set()
                await go_on.wait()
            return await change_seats(instance, change)

        a._change_seats = paused_change_seats  # type: ignore[method-assign]
        upkeep = asyncio.create_task(a._assert_records())
        await asyncio.wait_for(writing_first.wait(), 10)
        admission = await a.admit("maritime", 10)  # meanwhile a second visitor arrives in the second instance
        assert admission is not None and await a.confirm(admission)
        go_on.set()
        await asyncio.wait_for(upkeep, 10)
        seats = Seats.decode((await a.kv[SEATS].get(second.id)).value)
        assert a.held[second.id] == 2 and seats.held == {"a": 2}, seats
    finally:
        await a.stop()


async def test_stop_ends_when_a_heartbeat_s_reply_and_its_cancellation_arrive_together(nats_server: NatsServer):
    """Python 3.11's asyncio.wait_for (every nats-py request goes through it) returns a reply
    that arrived in the turn the task was cancelled in and drops the cancellation: the
    heartbeat beat on, and ClusterNode.stop waited for it for ever (an idle event loop in a
    benchmark). The put below waits for its reply exactly as nats-py's request does."""
    a = await node(nats_server, "a", heartbeat=0.05)
    kv = a.kv[PROCESSES]
    put = kv.put
    loop = asyncio.get_running_loop()
    waiting: asyncio.Queue[asyncio.Future] = asyncio.Queue()

    async def put_waiting_for_its_reply(key, value, *args, **kwargs):
        reply = loop.create_future()
        await waiting.put(reply)
        await asyncio.wait_for(reply, 5)
        return await put(key, value, *args, **kwargs)

    kv.put = put_waiting_for_its_reply  # type: ignore[method-assign]
    reply = await asyncio.wait_for(waiting.get(), 10)  # the heartbeat is waiting for NATS
    reply.set_result(None)  # the reply lands...
    stopping = asyncio.ensure_future(a.stop())  # ...and, in the same turn, stop cancels the heartbeat
    kv.put = put  # type: ignore[method-assign]
    done, _ = await asyncio.wait({stopping}, timeout=10)
    assert done, "stop is still waiting for the heartbeat"

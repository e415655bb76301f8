#!/usr/bin/env python3
"""A TCP relay that delays every byte by a fixed time, each direction on its own.

The fault suite's stand-in for netem's `delay` (this kernel has neither the netem qdisc nor
loadable modules): agents connect to the relay, the relay connects to the coordinator, and
whatever one side sends reaches the other DELAY ms later, in order. Packet loss is not the
relay's business (an nftables rule drops packets on the agent's link, so TCP itself sees the
loss and retransmits). A connection closed or reset on one side is closed on the other.

    relay.py --listen ADDR:PORT --to ADDR:PORT --delay-ms D [--port-file F] [--hold-file H]

While the file H exists, what agents send is held back (still read, so their TCP stays healthy,
and forwarded in order once H is gone) while the coordinator's bytes still flow: a one-way
partition at the application's level, without stalling the coordinator's TCP as dropping the
agent's packets (acknowledgements included) would. Writes the port it listens on to --port-file once it accepts connections (--listen ADDR:0 picks
a free one). Counts connections and bytes on stderr when it is stopped (SIGTERM).
"""
import argparse
import asyncio
import os
import signal
import sys

stats = {"connections": 0, "bytes_up": 0, "bytes_down": 0}


async def pump(reader, writer, delay, counter, hold_file=None):
    """Copies reader to writer, every chunk held until DELAY after it was read, and for as long
    as hold_file exists."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            while hold_file and os.path.exists(hold_file):
                await asyncio.sleep(0.05)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            stats[counter] += len(data)
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((0, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def handle(agent_reader, agent_writer, target, delay, hold_file):
    stats["connections"] += 1
    try:
        coord_reader, coord_writer = await asyncio.open_connection(*target)
    except OSError:
        agent_writer.close()
        return
    up = asyncio.create_task(pump(agent_reader, coord_writer, delay, "bytes_up", hold_file))
    down = asyncio.create_task(pump(coord_reader, agent_writer, delay, "bytes_down"))
    # Either side gone: the other goes too (as a real link's peer would see a reset).
    await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    for w in (agent_writer, coord_writer):
        try:
            w.close()
        except OSError:
            pass
    for t in (up, down):
        t.cancel()


def split(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--hold-file")
    args = ap.parse_args()
    target = split(args.to)
    delay = args.delay_ms / 1000.0
    host, port = split(args.listen)
    server = await asyncio.start_server(lambda r, w: handle(r, w, target, delay, args.hold_file), host, port)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.sockets[0].getsockname()[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print("relay: connections={connections} bytes_up={bytes_up} bytes_down={bytes_down}".format(**stats),
          file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())

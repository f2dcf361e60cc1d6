"""A relay in front of the test PostgreSQL (on its unix socket), whose traffic can be held: a
network that goes quiet without closing anything (a database host lost, a partition).

    async with Relay.to(database_url) as relay:
        url = relay.url_for(database_url)   # the same URL through the relay
        relay.hold()                        # bytes wait, in both directions, unread
        relay.release()                     # they flow again, nothing lost
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

SOCKET = ".s.PGSQL.5432"


class Relay:
    def __init__(self, socket_dir: str) -> None:
        self._target = str(Path(socket_dir) / SOCKET)
        self._dir = tempfile.TemporaryDirectory(prefix="chatlab-relay-")
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @classmethod
    def to(cls, url: str) -> Relay:
        """A relay to the server of `url` (a unix-socket URL: `?host=/socket/dir`)."""
        return cls(parse_qs(urlsplit(url).query)["host"][0])

    def url_for(self, url: str) -> str:
        parts = urlsplit(url)
        query = {**parse_qs(parts.query), "host": [self._dir.name]}
        return parts._replace(query=urlencode(query, doseq=True)).geturl()

    def hold(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    async def __aenter__(self) -> Relay:
        path = str(Path(self._dir.name) / SOCKET)
        self._server = await asyncio.start_unix_server(self._accept, path)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await self._server.wait_closed()
        self._dir.cleanup()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self._target)
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await source.read(65536)
                await self._flowing.wait()  # read while flowing, held before it is passed on
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

"""An ASGI app served by uvicorn on a thread of its own (the MCP endpoint, the HTTP API).

Its own event loop keeps HTTP requests from waiting behind the control plane's work, and
uvicorn on a thread that is not the main one leaves the process's SIGINT and SIGTERM alone (the
caller's loop keeps them).
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

import grpc
import uvicorn

__all__ = ["PlaneFace", "ThreadedServer"]

_STOP_GRACE: Final = 5


class ThreadedServer:
    """Serves the app that ``make_app()`` builds (on the server's own loop) at ``host:port``.

    Args:
        make_app: Builds the ASGI app, on the server's thread.
        host: Where to listen.
        port: The port (0: any free one; :attr:`port` says which once started).
        name: The thread's name.
        on_stop: Awaited on the server's loop after it stopped serving (to close clients).
    """

    def __init__(
        self,
        make_app: Callable[[], Any],
        *,
        host: str,
        port: int,
        name: str,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.make_app = make_app
        self.host = host
        self.port = port
        self.name = name
        self.on_stop = on_stop
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def url(self, path: str = "") -> str:
        """``http://host:port`` and ``path``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    async def start(self) -> None:
        """Listen; returns once requests are taken.

        Raises:
            OSError: It could not listen (the port is taken, say).
        """
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._failure is not None:
            raise OSError(
                f"{self.name} could not listen on {self.host}:{self.port}: {self._failure}"
            )

    async def stop(self) -> None:
        """Stop taking requests and wait for the thread (at most twice the grace)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, _STOP_GRACE * 2)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported by start() when it had not started yet
            self._failure = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        config = uvicorn.Config(
            self.make_app(),
            host=self.host,
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=_STOP_GRACE,
        )
        self._server = uvicorn.Server(config)
        task = asyncio.create_task(self._server.serve())
        try:
            while not self._server.started:
                if task.done():
                    task.result()
                    raise OSError("it stopped before it listened")
                await asyncio.sleep(0.02)
            self.port = self._server.servers[0].sockets[0].getsockname()[1]
            self._ready.set()
            await task
        finally:
            if self.on_stop is not None:
                await self.on_stop()


class PlaneFace(abc.ABC):
    """An HTTP face of the control plane (the HTTP/JSON API, the MCP endpoint): an app on a
    :class:`ThreadedServer` that calls the plane over gRPC, on loopback, in plaintext.

    Args:
        plane_address: The control plane's ``host:port``; it may be set after :meth:`start`,
            before the first request.
        host: Where to listen.
        port: The port (0: any free one; :attr:`port` says which once started).
        name: The server thread's name.
    """

    path = ""
    """The path its URL names (``/mcp``), if any."""

    def __init__(self, plane_address: str | None, *, host: str, port: int, name: str) -> None:
        self.plane_address = plane_address
        self._channel: grpc.aio.Channel | None = None
        self._server = ThreadedServer(
            self.app, host=host, port=port, name=name, on_stop=self.closed
        )

    @property
    def host(self) -> str:
        """Where it listens."""
        return self._server.host

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._server.port

    @property
    def url(self) -> str:
        """Its URL."""
        return self._server.url(self.path)

    async def start(self) -> None:
        """Listen; returns once requests are taken.

        Raises:
            OSError: It could not listen (the port is taken, say).
        """
        await self._server.start()

    async def stop(self) -> None:
        """Stop taking requests and close."""
        await self._server.stop()

    def channel(self) -> grpc.aio.Channel:
        """The channel to the plane (made on the server's loop, at the first request).

        Raises:
            RuntimeError: The plane's address is not known yet (it is starting).
        """
        if self._channel is None:
            if self.plane_address is None:
                raise RuntimeError("the engine is starting: try again in a moment")
            self._channel = grpc.aio.insecure_channel(self.plane_address)
        return self._channel

    @abc.abstractmethod
    def app(self) -> Any:
        """The ASGI app (built on the server's thread)."""

    async def closed(self) -> None:
        """After it stopped serving, on its loop: close the channel."""
        if self._channel is not None:
            await self._channel.close()

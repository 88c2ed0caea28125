"""The dashboard's parts, built from its settings: the storage and Control clients, the live feed
of domain events, the login (password, sessions, throttle), the spectrogram cache, the pages and
the web server."""

from __future__ import annotations

from acoustack.clients import StoreClient
from acoustack_dashboard.auth import load_password
from acoustack_dashboard.cache import ImageCache
from acoustack_dashboard.events import LiveFeed
from acoustack_dashboard.fleet import HubClient
from acoustack_dashboard.pages import ControlClient
from acoustack_dashboard.settings import DashboardSettings
from acoustack_dashboard.views import Views
from acoustack_dashboard.web import WebServer


class Dashboard:
    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.store = StoreClient(settings.storage_target)
        self.control = ControlClient(settings.control_target)
        self.feed = LiveFeed(settings.broker_url) if settings.broker_url else None
        self.views = Views(
            store=self.store,
            control=self.control,
            password=load_password(settings.password, settings.data_dir),
            recordings_root=settings.recordings_root,
            cache=ImageCache(
                settings.data_dir / "spectrograms", settings.spectrogram_cache_mb * 1024 * 1024
            ),
            public_pages=settings.public_pages,
            feed=self.feed,
            hub=HubClient(settings.hub_url) if settings.hub_url else None,
        )
        self.server = WebServer(self.views.router(), settings.http_host, settings.http_port)

    def start(self) -> Dashboard:
        if self.feed is not None:
            self.feed.start()
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        if self.feed is not None:
            self.feed.stop()
        self.store.close()
        self.control.close()

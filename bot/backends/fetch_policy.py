"""What the bot agrees to fetch: public http(s) addresses or the backend's own origin, audio, at a minimum pace."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections import deque
from collections.abc import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.errors import MusicApiUnavailableError, NotAudioError, UnsafeUrlError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# scheme, host as sent on the wire (punycode, lower case), port (the scheme's default when the URL names none)
Origin = tuple[str, str, int]

WEB_SCHEMES = frozenset({"http", "https"})
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT; also Alibaba's metadata, 100.100.100.200
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)  # 127.1, 0x7f000001, 2130706433: what inet_aton reads

SNIFF_BYTES = 12
AUDIO_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "application/ogg"})


def origin_of(url: URL) -> Origin | None:
    if url.scheme not in WEB_SCHEMES or not url.raw_host or url.port is None:
        return None
    return url.scheme, url.raw_host.lower().rstrip("."), url.port


def address_refusal(address: IPAddress) -> str | None:
    """Why the bot will not connect to this address, or None when it is an ordinary public one.

    Cloud metadata services live in the ranges refused here: 169.254.169.254 (link-local), fd00:ec2::254
    (unique local, fd00::/8) and 100.100.100.200 (CGNAT). IPv4 inside IPv6 (::ffff:a.b.c.d, 6to4, NAT64) is
    judged by the IPv4 address it carries.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            return address_refusal(embedded)
        if address.is_site_local:
            return "a private address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local or cloud metadata address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a carrier-grade NAT or cloud metadata address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "a private or reserved address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address an IP-literal host names, including the legacy IPv4 spellings; None for a host name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _syntax_refusal(url: URL) -> str | None:
    """Why a URL is refused before any lookup: its scheme, a missing host, a local name or a non-public literal."""
    if url.scheme not in WEB_SCHEMES:
        return "not an http or https address"
    host = (url.raw_host or "").lower().rstrip(".")
    if not host:
        return "an address without a host"
    if host == "localhost" or host.endswith(".localhost"):
        return "a loopback address"
    address = literal_address(host)
    return address_refusal(address) if address is not None else None


def is_public_http_url(url: str, trusted_origins: Iterable[str] = ()) -> bool:
    """A cheap check without DNS for addresses that others fetch (Discord fetches embed thumbnails): http(s),
    no credentials, and either on a trusted origin (the backend's own) or not localhost and not an IP literal
    in a non-public range."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    if parsed.user is not None or parsed.password is not None:
        return False
    return origin_of(parsed) in _origins(trusted_origins) or _syntax_refusal(parsed) is None


class RefusedAddressError(OSError):
    """A host resolved to an address the bot will not connect to (an OSError, so aiohttp's connector wraps it)."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host} resolves to {why}")
        self.why = why


def refused_answer(host: str, answers: Iterable[str]) -> RefusedAddressError | None:
    for answer in answers:
        why = address_refusal(ipaddress.ip_address(answer))
        if why is not None:
            return RefusedAddressError(host, why)
    return None


class PublicAddressResolver(AbstractResolver):
    """aiohttp's resolver, refusing a host when any of its addresses is not public, unless the host and port
    are a trusted origin's. Installed on the shared session, it makes the address connected to the vetted one
    (no DNS rebinding between the check and the connection). aiohttp never asks it about IP literals."""

    def __init__(self, trusted_origins: Iterable[str] = (), inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.DefaultResolver()
        self._trusted = {(host, port) for _, host, port in _origins(trusted_origins)}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if (host.lower().rstrip("."), port) in self._trusted:
            return answers
        refusal = refused_answer(host, (answer["host"] for answer in answers))
        if refusal is not None:
            raise refusal
        return answers

    async def close(self) -> None:
        await self._inner.close()


def make_connector(trusted_origins: Iterable[str]) -> aiohttp.TCPConnector:
    """The connector for the process's one session: every host name it resolves must be public, except the
    trusted origins (base URLs such as a self-hosted backend's http://localhost:3000). Call inside the loop."""
    return aiohttp.TCPConnector(resolver=PublicAddressResolver(trusted_origins))


def _origins(urls: Iterable[str]) -> frozenset[Origin]:
    found = (origin_of(URL(url)) for url in urls)
    return frozenset(origin for origin in found if origin is not None)


class UrlPolicy:
    """Which file addresses a backend may fetch: http(s) to public addresses, or anything on its own origin."""

    def __init__(self, trusted_origins: Iterable[str] = ()) -> None:
        self._trusted = _origins(trusted_origins)

    def trusts(self, url: URL) -> bool:
        """The URL is on a trusted origin (the backend's own)."""
        return origin_of(url) in self._trusted

    async def check(self, url: str | URL) -> URL:
        """The parsed URL when it may be fetched; UnsafeUrlError otherwise. Run it before every redirect hop."""
        try:
            parsed = URL(url)
        except ValueError as exc:
            raise _unsafe(str(url), "not a valid web address") from exc
        if origin_of(parsed) in self._trusted:
            return parsed
        refusal = _syntax_refusal(parsed)
        if refusal is not None:
            raise _unsafe(str(parsed), refusal)
        host = parsed.raw_host or ""
        if literal_address(host) is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise MusicApiUnavailableError(f"the file's host {host} does not resolve: {exc}") from exc
            resolved = refused_answer(host, (str(info[4][0]) for info in infos))
            if resolved is not None:
                raise _unsafe(str(parsed), resolved.why)
        return parsed


def _unsafe(url: str, why: str) -> UnsafeUrlError:
    log.warning("refused to fetch %s: %s", url, why)
    return UnsafeUrlError(f"the music service gave a file address the bot will not fetch ({why})")


def unsafe_address_error(url: str, refusal: RefusedAddressError) -> UnsafeUrlError:
    """The UnsafeUrlError for a connection the resolver refused (a host that changed its answer after the check)."""
    return _unsafe(url, refusal.why)


def sniff_audio_format(head: bytes) -> str | None:
    """The audio container the first bytes announce, as a file extension (mp3, wav, flac, ogg, m4a), or None."""
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"  # an ID3v2 tag, or an MPEG audio frame sync (11 set bits)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    return None


def refuse_unless_audio_type(content_type: str) -> None:
    """NotAudioError unless the content type may be audio: audio/*, a generic binary type, or none at all
    (aiohttp reports a missing one as application/octet-stream)."""
    if content_type.startswith("audio/") or content_type in AUDIO_CONTENT_TYPES:
        return
    raise NotAudioError(f"the music service's file is not audio (it was sent as {content_type})")


def refuse_unless_audio(head: bytes) -> str:
    """The format the first bytes announce; NotAudioError when they are no audio the bot knows."""
    audio_format = sniff_audio_format(head)
    if audio_format is not None:
        return audio_format
    if not head:
        raise NotAudioError("the music service's file is empty")
    raise NotAudioError("the music service's file is not audio (its first bytes are not MP3, WAV, FLAC, Ogg or MP4)")


class DownloadPace:
    """The minimum-throughput rule. From `window` seconds after the body starts, the bytes received in the
    last `window` seconds must average at least `min_bytes_per_second` (0 switches the rule off). Arrivals
    are kept in 0.5-second slots, so the rule costs the same however small the chunks are."""

    SLOT_SECONDS = 0.5

    def __init__(self, min_bytes_per_second: int, *, window: float, started: float) -> None:
        self.min_bytes_per_second = min_bytes_per_second
        self.window = window
        self._started = started
        self._slots: deque[tuple[int, float, int]] = deque()  # (slot number, last arrival, bytes)

    def record(self, now: float, size: int) -> None:
        slot = int((now - self._started) / self.SLOT_SECONDS)
        if self._slots and self._slots[-1][0] == slot:
            size += self._slots.pop()[2]
        self._slots.append((slot, now, size))
        while self._slots[0][1] <= now - self.window:
            self._slots.popleft()

    def give_up_at(self) -> float | None:
        """The loop time at which the download breaks the rule unless more bytes arrive; None when it is off."""
        if self.min_bytes_per_second <= 0:
            return None
        needed = self.min_bytes_per_second * self.window
        earliest = self._started + self.window
        remaining = sum(size for _, _, size in self._slots)
        if remaining < needed:
            return earliest
        for _, arrived, size in self._slots:
            remaining -= size
            if remaining < needed:
                return max(earliest, arrived + self.window)
        raise AssertionError("unreachable: with every slot gone, nothing remains")

    def describe(self) -> str:
        return f"the download fell below {self.min_bytes_per_second} bytes/s over {self.window:.0f} s"

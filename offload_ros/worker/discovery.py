# Copyright 2026 offload_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""
Worker discovery: DNS-SD announcements on a LAN, and DNS names with several addresses.

A gpu_worker started with `--announce _kserve._tcp` registers itself (python-zeroconf,
multicast DNS) as `<name>._kserve._tcp.local.` with its port and the TXT keys `path` and
`model`, and withdraws the record before it drains on SIGTERM. A robot with the offload node's
`discover` parameter browses for the type and uses each worker it finds (docs/protocol.md).

A `workers` entry whose host name resolves to several addresses (a Kubernetes headless
Service) names one worker per address, re-resolved as the directory refreshes.
"""
import ipaddress
import re
import socket
import threading
import urllib.parse
from typing import Callable, Dict, List, Mapping, Optional

DEFAULT_TYPE = '_kserve._tcp'
LOOKUP_TIMEOUT_MS = 3000


def _zeroconf():
    """Import python-zeroconf where discovery is used: a robot without it runs without."""
    try:
        import zeroconf
    except ImportError as e:
        raise RuntimeError('worker discovery needs python-zeroconf (pip install zeroconf; '
                           'rosdep key python3-zeroconf)') from e
    return zeroconf


def service_type(value: str) -> str:
    """'_kserve._tcp' -> '_kserve._tcp.local.' (ValueError naming a malformed type)."""
    value = value.strip().rstrip('.')
    if value.endswith('.local'):
        value = value[:-len('.local')]
    if not re.fullmatch(r'_[a-z0-9-]{1,15}\._(tcp|udp)', value):
        raise ValueError(f'service type {value!r} is not _name._tcp (RFC 6763)')
    return f'{value}.local.'


def worker_name(instance: str, type_: str) -> str:
    """Return a worker name from a DNS-SD instance name: letters, digits, '-' and '_'."""
    label = instance[:-len(type_)].rstrip('.') if instance.endswith(type_) else instance
    name = re.sub(r'[^A-Za-z0-9_-]', '-', label)[:40] or 'worker'
    return 'local-worker' if name == 'local' else name   # 'local' is the robot's target


def lan_addresses() -> List[str]:
    """Return this host's IPv4 addresses other than loopback."""
    import ifaddr
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return sorted(set(found))


class Announcer:
    """A worker's DNS-SD record: registered by start(), withdrawn by stop()."""

    def __init__(self, type_: str, name: str, port: int, host: str, model: str,
                 path: str = '/'):
        self.type = service_type(type_)
        addresses = lan_addresses() if host in ('0.0.0.0', '') else [host]
        if not addresses:
            raise ValueError('announce: no IPv4 address to announce')
        self.info = _zeroconf().ServiceInfo(
            self.type, f'{worker_name(name, self.type)}.{self.type}', port=port,
            addresses=[socket.inet_aton(a) for a in addresses],
            properties={'path': path, 'model': model},
            server=f'{worker_name(name, self.type)}.local.')
        self._zeroconf = None

    def start(self) -> None:
        zc = _zeroconf()
        self._zeroconf = zc.Zeroconf(ip_version=zc.IPVersion.V4Only)
        self._zeroconf.register_service(self.info)

    def stop(self) -> None:
        if self._zeroconf is not None:
            self._zeroconf.unregister_service(self.info)
            self._zeroconf.close()
            self._zeroconf = None


class Browser:
    """Workers announced with DNS-SD, name -> URL, kept current from zeroconf's thread."""

    def __init__(self, type_: str = DEFAULT_TYPE, model: Optional[str] = None):
        self.type, self.model = service_type(type_), model
        self._lock = threading.Lock()
        self._found: Dict[str, str] = {}
        zc = _zeroconf()
        self._zeroconf = zc.Zeroconf(ip_version=zc.IPVersion.V4Only)
        self._browser = zc.ServiceBrowser(self._zeroconf, self.type, handlers=[self._on_change])

    def _on_change(self, zeroconf, service_type: str, name: str, state_change) -> None:
        key = worker_name(name, service_type)
        if state_change is _zeroconf().ServiceStateChange.Removed:
            with self._lock:
                self._found.pop(key, None)
            return
        info = zeroconf.get_service_info(service_type, name, timeout=LOOKUP_TIMEOUT_MS)
        url = info and url_of(info, self.model)
        with self._lock:
            if url:
                self._found[key] = url
            else:
                self._found.pop(key, None)

    def workers(self) -> Dict[str, str]:
        with self._lock:
            return dict(self._found)

    def close(self) -> None:
        self._browser.cancel()
        self._zeroconf.close()


def url_of(info, model: Optional[str] = None) -> Optional[str]:
    """Return the worker's base URL from its record; None: another model, or no address."""
    props = {k.decode(errors='replace'): (v or b'').decode(errors='replace')
             for k, v in (info.properties or {}).items()}
    if model and props.get('model') and props['model'] != model:
        return None
    addresses = info.parsed_addresses(_zeroconf().IPVersion.V4Only)
    if not addresses or not info.port:
        return None
    path = props.get('path', '/')
    path = '' if path in ('', '/') else '/' + path.strip('/')
    return f'http://{addresses[0]}:{info.port}{path}'


def expand(workers: Mapping[str, str], resolve: Callable = socket.getaddrinfo
           ) -> Dict[str, str]:
    """
    One worker per address of each plain-HTTP entry whose host name has several (sorted).

    An entry with one address, an IP literal, HTTPS (its certificate names the host) or a name
    that does not resolve now stays as given.
    """
    out: Dict[str, str] = {}
    for name, url in workers.items():
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ''
        addresses: List[str] = []
        if parts.scheme == 'http' and host and not _is_ip(host):
            try:
                addresses = sorted({info[4][0] for info in resolve(
                    host, parts.port or 80, socket.AF_INET, socket.SOCK_STREAM)})
            except (OSError, UnicodeError):
                addresses = []
        if len(addresses) < 2:
            out[name] = url
            continue
        for address in addresses:
            netloc = f'{address}:{parts.port}' if parts.port else address
            out[f'{name}-{address.replace(".", "-")}'] = urllib.parse.urlunsplit(
                parts._replace(netloc=netloc))
    return out


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class Directory:
    """
    The workers a robot uses: its static entries (DNS names expanded) and those announced.

    refresh() (the node calls it on its io pool each epoch where `dynamic`: resolving may
    block) recomputes the set; current() returns the latest. A static name wins over an
    announced one.
    """

    def __init__(self, static: Mapping[str, str], discover: str = '',
                 model: Optional[str] = None, resolve: Callable = socket.getaddrinfo):
        self._static, self._resolve = dict(static), resolve
        self.browser = Browser(discover, model) if discover else None
        self._lock = threading.Lock()
        self._current: Dict[str, str] = expand(self._static, resolve)

    @property
    def dynamic(self) -> bool:
        """Whether refresh() can change anything: a browser, or a static name to resolve."""
        with self._lock:
            static = list(self._static.values())
        return self.browser is not None or any(
            not _is_ip(urllib.parse.urlsplit(url).hostname or '') for url in static)

    def set_static(self, static: Mapping[str, str]) -> None:
        with self._lock:
            self._static = dict(static)
        self.refresh()

    def refresh(self) -> Dict[str, str]:
        with self._lock:
            static = dict(self._static)
        found = {**(self.browser.workers() if self.browser else {}),
                 **expand(static, self._resolve)}
        with self._lock:
            self._current = found
        return dict(found)

    def current(self) -> Dict[str, str]:
        with self._lock:
            return dict(self._current)

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()

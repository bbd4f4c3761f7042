"""Redis providers: the Provider interface on Redis, for several processes or machines.

Each session is one Redis hash: ``m:c`` (created), ``m:u`` (last used),
``m:k`` (cookie last sent), ``m:p`` (permanent), and ``d:<key>`` per data key.
Writes go to Redis key by key as they happen, so two concurrent requests of
one session that write different keys lose nothing.
"""

try:
    import redis as _redis_py  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError("memsession.redis needs the redis package: pip install 'memsession[redis]'") from exc

from .aio import AsyncRedisProvider
from .cached import CachedRedisProvider, CachedRedisSession
from .cached_aio import AsyncCachedRedisProvider, AsyncCachedRedisSession
from .provider import RedisProvider
from .serializers import JSONSerializer, Serializer
from .session import AsyncRedisSession, RedisSession

__all__ = [
    "AsyncCachedRedisProvider",
    "AsyncCachedRedisSession",
    "AsyncRedisProvider",
    "AsyncRedisSession",
    "CachedRedisProvider",
    "CachedRedisSession",
    "JSONSerializer",
    "RedisProvider",
    "RedisSession",
    "Serializer",
]

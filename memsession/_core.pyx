# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, freethreading_compatible=False
"""Compiled session store: the Session type and the in-memory provider."""

cimport cython
from cpython.dict cimport PyDict_DelItem, PyDict_GetItem, PyDict_SetItem, PyDict_Size, PyDict_Update
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.math cimport INFINITY, floor, isfinite
from libc.string cimport memcmp

cdef extern from *:
    """
    #if defined(_WIN32)
    #include <windows.h>
    static double memsession_monotonic(void) {
        return (double)GetTickCount64() / 1000.0;
    }
    #else
    #include <time.h>
    static double memsession_monotonic(void) {
        struct timespec ts;
    #if defined(CLOCK_MONOTONIC_COARSE)
        /* A few milliseconds of resolution is plenty for idle timeouts
           and costs no syscall. */
        if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
            return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
        }
    #endif
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    #endif
    """
    double memsession_monotonic() nogil

cdef extern from *:
    """
    /* ms_rarely: a branch a usual read never takes, which the compiler
       lays out of its way, so a read touches fewer lines of code.
       ms_prefetch: ask for the line at p, to be written, while other loads
       are under way (a hint: it changes nothing else). */
    #if defined(__GNUC__) || defined(__clang__)
    #define ms_rarely(x) __builtin_expect(!!(x), 0)
    #define ms_prefetch(p) __builtin_prefetch((const void *)(p), 1, 3)
    #else
    #define ms_rarely(x) (x)
    #define ms_prefetch(p) ((void)0)
    #endif
    """
    bint ms_rarely(bint) nogil
    void ms_prefetch(const void*) nogil

cdef extern from *:
    """
    /* floor(now) > floor(then), exactly. Without SSE4.1 the compiler
       inlines each floor as some fifteen instructions; times from zero up to
       2**52 (every clock's) compare as truncated integers instead. */
    static inline int ms_later_second(double now, double then) {
        if (!(now > then)) return 0;  /* floor keeps the order; also NaN */
        if (then >= 0.0 && now < 4503599627370496.0) {
            return (long long)now > (long long)then;
        }
        return floor(now) > floor(then);
    }
    """
    bint ms_later_second(double now, double then) nogil

cdef extern from *:
    """
    /* The store's map from id to session: open addressing with linear
       probing over one array of words. A word is 0 (never used), 1 (a
       removed entry) or a session pointer carrying bits of the id's hash
       where the address has none: its three low bits (zero in any object
       address) and, on 64-bit platforms, its top sixteen (zero in every
       user-space address there). With 19 bits a probe follows a pointer to
       the wrong session about once in half a million lookups, not once in
       eight. One word per slot and no stored keys or hashes: about a third
       of a dict's bytes per session, and one cache miss less per lookup.
       The capacity is any size (the hash is scaled onto it), so the table
       grows by half, not double. The list's ends live here too, so
       clearing the table leaves the list empty. */
    typedef struct {
        size_t *slots;
        size_t capacity;
        Py_ssize_t used;     /* sessions held */
        Py_ssize_t filled;   /* sessions held plus removed entries */
        void *head;          /* least recently used */
        void *tail;          /* most recently used */
        int narrow;          /* 1: an address used the top bits; tags are 3 bits */
    } ms_table;

    #define MS_LOW_BITS ((size_t)7)
    #if SIZEOF_SIZE_T == 8
    #define MS_HIGH_BITS ((size_t)0xFFFF000000000000ULL)
    #else
    #define MS_HIGH_BITS ((size_t)0)
    #endif

    /* The bits of a word that carry the tag, not the address. */
    static inline size_t ms_mask(const ms_table *t) {
        return t->narrow ? MS_LOW_BITS : (MS_LOW_BITS | MS_HIGH_BITS);
    }

    /* The tag of a hash: bits 0-2 in the low bits, bits 3-18 in the top
       sixteen (the slot comes from the hash's high bits, so they differ). */
    static inline size_t ms_tag(const ms_table *t, Py_hash_t h) {
        size_t tag = (size_t)h & MS_LOW_BITS;
    #if SIZEOF_SIZE_T == 8
        if (!t->narrow) tag |= (((size_t)h >> 3) & (size_t)0xFFFF) << 48;
    #endif
        return tag;
    }

    /* The session a word holds (borrowed). */
    static inline PyObject *ms_session(const ms_table *t, size_t word) {
        return (PyObject *)(word & ~ms_mask(t));
    }

    /* Drop the top tag bits for good: an address reached into them. */
    static void ms_narrow(ms_table *t) {
        if (t->narrow) return;
        for (size_t i = 0; t->slots && i < t->capacity; i++) {
            if (t->slots[i] > 1) t->slots[i] &= ~MS_HIGH_BITS;
        }
        t->narrow = 1;
    }

    /* The hash of an exact str: its cached one when it has been computed. */
    static inline Py_hash_t ms_hash(PyObject *sid) {
        Py_hash_t h = ((PyASCIIObject *)sid)->hash;
        return h != -1 ? h : PyObject_Hash(sid);
    }

    /* The slot where a hash's probe starts: the hash scaled onto the
       capacity (its high bits decide; the tag uses the low ones). */
    static inline size_t ms_home(Py_hash_t h, size_t capacity) {
    #if defined(__SIZEOF_INT128__) && SIZEOF_SIZE_T == 8
        return (size_t)(((unsigned __int128)(size_t)h * capacity) >> 64);
    #else
        return ((size_t)h >> 3) % capacity;
    #endif
    }

    /* Whether stored (an exact str in the table) is the id sought (an exact
       str whose hash is h): identity, else equal hash, length and bytes. */
    static inline int ms_same_id(PyObject *stored, PyObject *sought, Py_hash_t h) {
        if (stored == sought) return 1;
        if (((PyASCIIObject *)stored)->hash != h) return 0;
        return PyUnicode_GET_LENGTH(stored) == PyUnicode_GET_LENGTH(sought)
            && PyUnicode_KIND(stored) == PyUnicode_KIND(sought)
            && memcmp(PyUnicode_DATA(stored), PyUnicode_DATA(sought),
                      (size_t)PyUnicode_GET_LENGTH(stored) * PyUnicode_KIND(stored)) == 0;
    }

    /* Empty the table and release its references. */
    static void ms_table_release(ms_table *t) {
        size_t *slots = t->slots;
        size_t n = slots ? t->capacity : 0;
        size_t mask = ms_mask(t);  /* before any destructor can run */
        t->slots = NULL;
        t->capacity = 0;
        t->used = t->filled = 0;
        t->head = t->tail = NULL;
        for (size_t i = 0; i < n; i++) {
            if (slots[i] > 1) {
                Py_DECREF((PyObject *)(slots[i] & ~mask));
            }
        }
        PyMem_Free(slots);
    }

    /* The provider type's own traverse and clear, extended to the sessions
       the table owns (the cyclic collector must see those references). */
    static Py_ssize_t ms_table_offset;
    static traverseproc ms_base_traverse;
    static inquiry ms_base_clear;

    static int ms_provider_traverse(PyObject *o, visitproc visit, void *arg) {
        int r = ms_base_traverse ? ms_base_traverse(o, visit, arg) : 0;
        if (r) return r;
        ms_table *t = (ms_table *)((char *)o + ms_table_offset);
        if (t->slots) {
            for (size_t i = 0; i < t->capacity; i++) {
                if (t->slots[i] > 1) Py_VISIT(ms_session(t, t->slots[i]));
            }
        }
        return 0;
    }

    static int ms_provider_clear(PyObject *o) {
        ms_table_release((ms_table *)((char *)o + ms_table_offset));
        return ms_base_clear ? ms_base_clear(o) : 0;
    }

    static void ms_install(PyObject *provider, ms_table *table) {
        PyTypeObject *type = Py_TYPE(provider);
        ms_table_offset = (char *)table - (char *)provider;
        if (type->tp_traverse != ms_provider_traverse) {
            ms_base_traverse = type->tp_traverse;
            ms_base_clear = type->tp_clear;
            type->tp_traverse = ms_provider_traverse;
            type->tp_clear = ms_provider_clear;
        }
    }
    """
    ctypedef struct ms_table:
        size_t* slots
        size_t capacity
        Py_ssize_t used
        Py_ssize_t filled
        void* head
        void* tail
        int narrow
    size_t MS_HIGH_BITS
    size_t ms_mask(const ms_table* t) nogil
    size_t ms_tag(const ms_table* t, Py_hash_t h) nogil
    PyObject* ms_session(const ms_table* t, size_t word) nogil
    void ms_narrow(ms_table* t) nogil
    Py_hash_t ms_hash(PyObject* sid) except? -1
    size_t ms_home(Py_hash_t h, size_t capacity) nogil
    bint ms_same_id(PyObject* stored, PyObject* sought, Py_hash_t h)
    void ms_table_release(ms_table* t)
    void ms_install(PyObject* provider, ms_table* table)


from collections.abc import MutableMapping as _MutableMapping
from datetime import timedelta as _timedelta

cdef extern from "Python.h":
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)

cdef extern from *:
    """
    /* 1: may appear in an id; 2: may also end one (43 base64 characters
       carry 258 bits, so the last holds 4 bits and two zero bits). */
    static const unsigned char memsession_id_chars[128] = {
        ['A']=3, ['B']=1, ['C']=1, ['D']=1, ['E']=3, ['F']=1, ['G']=1, ['H']=1,
        ['I']=3, ['J']=1, ['K']=1, ['L']=1, ['M']=3, ['N']=1, ['O']=1, ['P']=1,
        ['Q']=3, ['R']=1, ['S']=1, ['T']=1, ['U']=3, ['V']=1, ['W']=1, ['X']=1,
        ['Y']=3, ['Z']=1,
        ['a']=1, ['b']=1, ['c']=3, ['d']=1, ['e']=1, ['f']=1, ['g']=3, ['h']=1,
        ['i']=1, ['j']=1, ['k']=3, ['l']=1, ['m']=1, ['n']=1, ['o']=3, ['p']=1,
        ['q']=1, ['r']=1, ['s']=3, ['t']=1, ['u']=1, ['v']=1, ['w']=3, ['x']=1,
        ['y']=1, ['z']=1,
        ['0']=3, ['1']=1, ['2']=1, ['3']=1, ['4']=3, ['5']=1, ['6']=1, ['7']=1,
        ['8']=3, ['9']=1, ['-']=1, ['_']=1,
    };
    """
    const unsigned char* memsession_id_chars


def is_session_id(value):
    """True when value has exactly the shape of an id memsession issues."""
    return _is_id(value)


cdef inline bint _is_id(object value) noexcept:
    if type(value) is not str:
        return False
    if PyUnicode_GET_LENGTH(value) != 43 or not PyUnicode_IS_ASCII(value):
        return False
    return _id_chars(<const unsigned char*>PyUnicode_DATA(value))


cdef inline bint _id_chars(const unsigned char* data) noexcept:
    # The 43 characters at data, which the caller has of that length, form an id.
    cdef Py_ssize_t i
    for i in range(42):
        if data[i] >= 128 or not memsession_id_chars[data[i]]:
            return False
    return data[42] < 128 and (memsession_id_chars[data[42]] & 2) != 0


cdef extern from *:
    """
    #if defined(_WIN32)
    static int memsession_readable(long long fd) { (void)fd; return -1; }
    #else
    #include <poll.h>
    static int memsession_readable(long long fd) {
        struct pollfd p;
        p.fd = (int)fd;
        p.events = POLLIN;
        p.revents = 0;
        return poll(&p, 1, 0);
    }
    #endif
    """
    int memsession_readable(long long fd) nogil


cdef extern from *:
    """
    #if defined(_WIN32)
    static double memsession_monotonic_precise(void) {
        return (double)GetTickCount64() / 1000.0;
    }
    #else
    static double memsession_monotonic_precise(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);  /* time.monotonic()'s clock */
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    #endif
    """
    double memsession_monotonic_precise() nogil


def readable(long long fd):
    """True when the socket fd has data (or an error, or EOF) to read now; never blocks.

    Where the platform has no poll() it answers True, and the caller reads.
    """
    return memsession_readable(fd) != 0


# Writes through any near cache of this process (see NearReader).
cdef unsigned long long _local_writes = 0
# A poll that found the tracking socket empty stands for this long.
cdef double _POLL_GAP = 20e-6


def local_write():
    """Count a write through a near cache of this process: local hits then poll again."""
    global _local_writes
    _local_writes += 1


@cython.final
cdef class NearReader:
    """A near cache's local hit, compiled: the one path that must cost no round trip.

    read(sid, max_lifetime) returns the kept session when the tracking
    socket (fd) has nothing waiting, no drain is applying pushes (busy), no
    heartbeat is due (next_ping, time.monotonic() seconds), and the copy in
    cache is current, holds only immutable values (kept[meta_key][2]) and
    had its use recorded within refresh seconds (kept[meta_key][1]);
    everything else goes to slow(sid, max_lifetime). The socket is polled
    unless a poll found it empty less than 20 µs ago and no local_write()
    happened since.
    """

    cdef public object cache
    cdef public long long fd
    cdef public bint busy
    cdef public double next_ping
    cdef public double refresh
    cdef public unsigned long long hits
    cdef double _polled
    cdef unsigned long long _writes
    cdef object _meta_key
    cdef object _slow

    def __init__(self, cache, meta_key, double refresh, slow):
        self.cache = cache
        self.fd = -1
        self.busy = False
        self.next_ping = 0.0
        self.refresh = refresh
        self.hits = 0
        self._polled = -1.0
        self._writes = 0
        self._meta_key = meta_key
        self._slow = slow

    cdef inline bint _quiet(self, double now):
        cdef unsigned long long writes
        if self.fd < 0 or now >= self.next_ping:
            return False
        if not (now - self._polled < _POLL_GAP and self._writes == _local_writes):
            writes = _local_writes
            if memsession_readable(self.fd) != 0:
                return False
            self._polled = now
            self._writes = writes
        # Read after the socket: a drain sets busy before it takes pushes off.
        return not self.busy

    def quiet(self):
        """True when nothing was pushed since the last drain (a local copy may be used)."""
        return self._quiet(memsession_monotonic_precise())

    @cython.binding(False)
    def read(self, sid, max_lifetime=None):
        """The kept session when it may be served from memory; else slow(sid, max_lifetime)."""
        cdef PyObject* meta
        cdef double used
        if (
            type(sid) is str
            and (max_lifetime is None or type(max_lifetime) is float or type(max_lifetime) is int)
            and self._quiet(memsession_monotonic_precise())
        ):
            if type(self.cache) is MemoryProvider:  # the usual store: no Python call
                entry = (<MemoryProvider>self.cache)._read(
                    _check_sid(sid), -1.0 if max_lifetime is None else _as_seconds(max_lifetime, "max_lifetime")
                )
            else:
                entry = self.cache.session_read(sid, max_lifetime)
            if entry is not None:
                meta = PyDict_GetItem(entry, self._meta_key)
                if meta != NULL and (<list>meta)[2] is True:
                    used = (<Session>entry).last_used
                    if used - <double>(<list>meta)[1] < self.refresh:
                        session = (<list>meta)[0]
                        session._last_used = used
                        self.hits += 1
                        return session
        return self._slow(sid, max_lifetime)


cdef inline str _check_sid(object sid):
    """Return sid as an exact str, or raise TypeError/ValueError."""
    if type(sid) is not str:
        if not isinstance(sid, str):
            raise TypeError(f"sid must be str, not {type(sid).__name__}")
        # A str subclass could override __eq__/__hash__ and run code
        # inside a store operation; work on an exact copy instead.
        sid = str.__str__(sid)
    if not sid:
        raise ValueError("sid must not be empty")
    return <str>sid


cdef inline bint _is_number(object value):
    """A real int or float; bool is refused (True seconds is a bug, not 1.0)."""
    return type(value) is float or (isinstance(value, (int, float)) and not isinstance(value, bool))


cdef inline double _as_seconds(object value, str name) except? -1.0:
    """Convert a lifetime argument (seconds or a timedelta) to float seconds, validating it."""
    if type(value) is not float and isinstance(value, _timedelta):
        value = value.total_seconds()
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    cdef double result = value
    if not result >= 0.0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return result


cdef inline double _as_time(object value) except? -1.0:
    """Validate what an injected clock returned."""
    if not _is_number(value):
        raise TypeError(f"clock must return a number, not {type(value).__name__}")
    cdef double result = value
    if not isfinite(result):
        raise ValueError(f"clock must return a finite number, got {value!r}")
    return result


cdef inline str _short(str sid):
    """The first characters of an id, for messages and reprs."""
    return sid[:8] + "…" if len(sid) > 8 else sid


@cython.final
cdef class Session(dict):
    """A stored session: a dict of its data plus its id and timestamps.

    Per-request state (modified, accessed, cookie bookkeeping) never lives
    here: every request of a session shares this object, so the Manager
    hands each request its own view of it.
    """

    # last_used and sid first: a read touches them, and next to the object
    # header they share its cache line more often.
    cdef readonly double last_used
    cdef readonly str sid
    cdef readonly double created
    # Neighbours in the provider's last-use list. Borrowed pointers: the
    # provider's map owns every linked session, so the list adds no
    # references and no reference cycles.
    cdef void* _prev
    cdef void* _next
    # Seconds after `created` at which the cookie was last sent (Manager's).
    cdef float _cookie_off
    cdef unsigned char _stored
    # permanent: 0: the Manager's default, 1: no, 2: yes.
    cdef unsigned char _permanent

    def __init__(self, sid):
        """A detached session (in no store) with id sid."""
        if self.sid is not None:
            # The id is the store's key: it is set once, never changed.
            raise TypeError("Session is initialised already: its id never changes")
        self.sid = _check_sid(sid)

    @property
    def permanent(self):
        """Whether the cookie outlives the browser session; None: the Manager's choice."""
        return None if self._permanent == 0 else self._permanent == 2

    @permanent.setter
    def permanent(self, value):
        cdef unsigned char wanted = 0 if value is None else (2 if value else 1)
        if wanted != self._permanent:
            self._permanent = wanted
            # The cookie's attributes change: have the Manager send it again.
            self._cookie_off = -INFINITY

    @property
    def new(self):
        """True until the session is stored."""
        return self._stored == 0

    @property
    def _cookie_at(self):
        """When the Manager last sent this session's cookie (provider clock)."""
        return self.created + <double>self._cookie_off

    @_cookie_at.setter
    def _cookie_at(self, double value):
        self._cookie_off = <float>(value - self.created)

    def session_id(self):
        """The session's id."""
        return self.sid

    def set(self, key, value):
        """Store value under key."""
        PyDict_SetItem(self, key, value)

    def delete(self, key):
        """Remove key; no error when it is absent."""
        if PyDict_GetItem(self, key) != NULL:
            PyDict_DelItem(self, key)

    def __reduce__(self):
        # A copy or pickle of a session is its data; ids stay with the store.
        return (dict, (dict(self),))

    def __repr__(self):
        sid = "?" if self.sid is None else _short(self.sid)
        return f"Session({sid!r}, {dict.__repr__(self)})"


_MutableMapping.register(Session)


@cython.final
cdef class MemoryProvider:
    """Sessions in process memory: a hash map plus a list ordered by the second of last use."""

    # The map from id to session, and the list's ends (see ms_table).
    cdef ms_table _table
    cdef bint _ready
    cdef object _clock
    cdef Py_ssize_t _max_sessions
    # The longest idle lifetime callers have read or collected with (-1:
    # none yet): inserts reclaim sessions idle longer than that.
    cdef double _reclaim_after
    cdef unsigned long long _hits, _misses, _created
    cdef unsigned long long _destroyed, _expired, _evicted
    cdef object __weakref__

    def __init__(self, *, max_sessions=None, clock=None):
        if self._ready:
            # Re-initialising would orphan the linked sessions under a running sweep.
            raise TypeError("MemoryProvider is initialised already")
        if max_sessions is not None:
            if isinstance(max_sessions, bool) or not isinstance(max_sessions, int):
                raise TypeError(
                    f"max_sessions must be an int or None, not {type(max_sessions).__name__}"
                )
            if max_sessions < 1:
                raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        self._ready = True
        self._clock = clock
        self._max_sessions = 0 if max_sessions is None else max_sessions
        self._reclaim_after = -1.0

    @property
    def max_sessions(self):
        """The capacity, or None when unbounded."""
        return None if self._max_sessions == 0 else self._max_sessions

    def __cinit__(self):
        # Also for a provider made by __new__ alone: no lifetime known yet.
        self._reclaim_after = -1.0

    def __dealloc__(self):
        ms_table_release(&self._table)

    cdef inline Session _find(self, str sid):
        """The stored session under sid, or None."""
        cdef size_t* slots = self._table.slots
        if slots == NULL:
            return None
        cdef Py_hash_t h = ms_hash(<PyObject*>sid)
        cdef size_t capacity = self._table.capacity
        cdef size_t mask = ms_mask(&self._table)
        cdef size_t tag = ms_tag(&self._table, h)
        cdef size_t i = ms_home(h, capacity)
        cdef size_t word
        cdef PyObject* found
        while True:
            word = slots[i]
            if word == 0:
                return None
            if word > 1 and (word & mask) == tag:
                # Borrowed until it matches: a wrong candidate is only read.
                found = <PyObject*>(word & ~mask)
                # The id and time lie 48-63 bytes in, most often on the next
                # line after the header, whose reference count the caller
                # writes: both misses then overlap instead of following.
                ms_prefetch(found)
                if ms_same_id(<PyObject*>(<Session>found).sid, <PyObject*>sid, h):
                    return <Session>found
            i += 1
            if i == capacity:
                i = 0

    cdef int _grow(self, Py_ssize_t need) except -1:
        """Rebuild the table with room for need sessions, half full."""
        cdef size_t capacity = <size_t>need * 2
        if capacity < 8:
            capacity = 8
        cdef size_t* fresh = <size_t*>PyMem_Calloc(capacity, sizeof(size_t))
        if fresh == NULL:
            raise MemoryError()
        cdef size_t* old = self._table.slots
        cdef size_t old_capacity = self._table.capacity if old != NULL else 0
        cdef size_t j, i, word
        cdef Py_hash_t h
        for j in range(old_capacity):
            word = old[j]
            if word > 1:
                h = ms_hash(<PyObject*>(<Session>ms_session(&self._table, word)).sid)
                i = ms_home(h, capacity)
                while fresh[i] != 0:
                    i += 1
                    if i == capacity:
                        i = 0
                fresh[i] = word
        self._table.slots = fresh
        self._table.capacity = capacity
        self._table.filled = self._table.used
        PyMem_Free(old)
        return 0

    cdef int _put(self, Session s) except -1:
        """Add s, whose id the table does not hold; the table takes a reference."""
        if self._table.slots == NULL or (<size_t>self._table.filled + 1) * 4 > self._table.capacity * 3:
            self._grow(self._table.used + 1)
        if (<size_t><void*>s) & MS_HIGH_BITS:
            ms_narrow(&self._table)
        cdef Py_hash_t h = ms_hash(<PyObject*>s.sid)
        cdef size_t* slots = self._table.slots
        cdef size_t capacity = self._table.capacity
        cdef size_t i = ms_home(h, capacity)
        # The first removed entry on the way is reused (the id is not held
        # further on: the caller checked); else the empty slot ending the run.
        while slots[i] > 1:
            i += 1
            if i == capacity:
                i = 0
        if slots[i] == 0:
            self._table.filled += 1
        Py_INCREF(s)
        slots[i] = (<size_t><void*>s) | ms_tag(&self._table, h)
        self._table.used += 1
        return 0

    cdef void _drop(self, Session s) noexcept:
        """Take s out of the table; the caller holds a reference, so nothing is freed here."""
        cdef size_t* slots = self._table.slots
        if slots == NULL:
            return
        cdef size_t capacity = self._table.capacity
        cdef size_t mask = ms_mask(&self._table)
        cdef size_t i = ms_home(ms_hash(<PyObject*>s.sid), capacity)
        cdef size_t target = <size_t><void*>s
        cdef size_t word
        while True:
            word = slots[i]
            if word == 0:
                return
            if word > 1 and (word & ~mask) == target:
                slots[i] = 1
                self._table.used -= 1
                Py_DECREF(s)
                return
            i += 1
            if i == capacity:
                i = 0

    cdef inline double _now(self) except? -1.0:
        if not ms_rarely(self._clock is not None):
            return memsession_monotonic()
        return _as_time(self._clock())

    cdef inline void _unlink(self, Session s) noexcept:
        if s._prev != NULL:
            (<Session>s._prev)._next = s._next
        else:
            self._table.head = s._next
        if s._next != NULL:
            (<Session>s._next)._prev = s._prev
        else:
            self._table.tail = s._prev
        s._prev = s._next = NULL

    cdef inline void _append(self, Session s) noexcept:
        s._prev = self._table.tail
        s._next = NULL
        if self._table.tail != NULL:
            (<Session>self._table.tail)._next = <void*>s
        else:
            self._table.head = <void*>s
        self._table.tail = <void*>s

    cdef inline double _not_before_tail(self, double now) noexcept:
        # Another thread may have stamped a later time between our clock
        # read and now (an injected clock can switch threads); the list must
        # stay ordered by second of use, so time in the store never runs backwards.
        if ms_rarely(self._table.tail != NULL and now < (<Session>self._table.tail).last_used):
            return (<Session>self._table.tail).last_used
        return now

    cdef inline void _touch(self, Session s, double now) noexcept:
        # The list is ordered by the whole second of each last use, not by
        # the use itself: a session used again within the second it was
        # last moved in only has its time written. That keeps repeated reads
        # off both list neighbours (two more cache misses per read), and
        # expiry still decides on the recorded time.
        now = self._not_before_tail(now)
        if ms_rarely(ms_later_second(now, s.last_used)):
            s.last_used = now
            if self._table.tail != <void*>s:
                self._unlink(s)
                self._append(s)
        elif now > s.last_used:
            s.last_used = now

    cdef int _remove(self, Session s) except -1:
        # The caller holds a reference to s, so deleting the map entry
        # cannot run a destructor before the list and map agree again.
        if not s._stored:
            return 0
        self._unlink(s)
        s._stored = 0
        self._drop(s)
        return 0

    cdef inline bint _head_stale(self, double now) noexcept:
        """Whether the least recently used session idled past the reclaim limit."""
        return (
            self._reclaim_after >= 0.0
            and self._table.head != NULL
            and now - (<Session>self._table.head).last_used > self._reclaim_after
        )

    cdef int _store(self, Session s, double now) except -1:
        """Link a detached session, evicting the LRU one at capacity.

        Each insert also reclaims up to two expired sessions from the stale
        end, so abandoned sessions cannot pile up with no GC thread and no
        call: amortized O(1), never a scan.
        """
        cdef Session victim = None
        cdef Session stale1 = None
        cdef Session stale2 = None
        s.created = s.last_used = self._not_before_tail(now)
        if self._head_stale(now):
            stale1 = <Session>self._table.head
            self._remove(stale1)
            self._expired += 1
            if self._head_stale(now):
                stale2 = <Session>self._table.head
                self._remove(stale2)
                self._expired += 1
        if self._max_sessions and self._table.used >= self._max_sessions:
            victim = <Session>self._table.head
            self._remove(victim)
            self._evicted += 1
        self._put(s)
        self._append(s)
        s._stored = 1
        self._created += 1
        return 0
        # victims are released on return, with the store consistent

    cdef inline void _saw_lifetime(self, double limit) noexcept:
        if ms_rarely(limit > self._reclaim_after):
            self._reclaim_after = limit

    def now(self):
        """The provider's clock, in seconds."""
        return self._now()

    def session_init(self, sid):
        """Create and store a new, empty session under sid."""
        sid = _check_sid(sid)
        cdef double now = self._now()
        # Allocate before touching the store: allocation may run the cyclic
        # garbage collector, and with it arbitrary destructors.
        cdef Session s = Session.__new__(Session)
        s.sid = sid
        if self._find(sid) is not None:
            raise ValueError(f"session {_short(sid)!r} is live already")
        self._store(s, now)
        return s

    def session_new(self, sid):
        """A detached session for sid, to be stored later by session_insert."""
        sid = _check_sid(sid)
        cdef Session s = Session.__new__(Session)
        s.sid = sid
        s.created = s.last_used = self._now()
        return s

    def session_insert(self, session):
        """Store a detached session under its own id."""
        if type(session) is not Session:
            raise TypeError(
                f"session must be a memsession._core.Session, not {type(session).__name__}"
            )
        cdef Session s = <Session>session
        if s.sid is None:
            raise ValueError("session has no id: make sessions with session_new(sid)")
        cdef double now = self._now()
        if s._stored:
            raise ValueError("session is stored already")
        if self._find(s.sid) is not None:
            raise ValueError(f"session {_short(s.sid)!r} is live already")
        self._store(s, now)

    @cython.binding(False)
    def session_read(self, sid, max_lifetime=None):
        """The live session for sid, marked used now; None when unknown or expired."""
        # The calls _session_read_entry passes on (keywords, other types), and
        # every call where that entry is not installed.
        if not ms_plain_sid(<PyObject*>sid):
            sid = _check_sid(sid)
        cdef double limit = ms_plain_limit(<PyObject*>max_lifetime)
        if limit < -1.0:
            limit = _as_seconds(max_lifetime, "max_lifetime")
        return self._read(<str>sid, limit)

    cdef Session _read(self, str sid, double limit):
        """session_read with its arguments checked (limit -1: no lifetime)."""
        cdef Session s
        cdef double now = self._now()
        if limit >= 0.0:
            self._saw_lifetime(limit)
        s = self._find(sid)
        if ms_rarely(s is None):
            self._misses += 1
            return None
        if ms_rarely(limit >= 0.0 and now - s.last_used > limit):
            self._remove(s)
            self._expired += 1
            self._misses += 1
            return None
        self._touch(s, now)
        self._hits += 1
        # Reads reclaim too (one stale session at most), so traffic that only
        # reads cannot keep expired sessions in memory either.
        cdef Session stale
        if ms_rarely(self._head_stale(now)):
            stale = <Session>self._table.head
            self._remove(stale)
            self._expired += 1
        return s

    @cython.binding(False)
    def session_update(self, sid):
        """Mark the session used now; False when sid is unknown."""
        sid = _check_sid(sid)
        cdef double now = self._now()
        cdef Session s = self._find(sid)
        if s is None:
            return False
        self._touch(s, now)
        return True

    def session_destroy(self, sid):
        """Remove the session; nothing happens when sid is unknown."""
        sid = _check_sid(sid)
        cdef Session s = self._find(sid)
        if s is None:
            return None
        self._remove(s)
        self._destroyed += 1

    def session_take(self, sid):
        """Remove the session and return it (its data as stored); None when not live."""
        sid = _check_sid(sid)
        cdef Session s = self._find(sid)
        if s is None:
            return None
        self._remove(s)
        self._destroyed += 1
        return s

    def session_destroy_if_empty(self, sid):
        """Remove the session if it holds no data; True when it was removed."""
        sid = _check_sid(sid)
        cdef Session s = self._find(sid)
        if s is None:
            return False
        if dict.__len__(s) != 0:
            return False
        self._remove(s)
        self._destroyed += 1
        return True

    def session_gc(self, max_lifetime):
        """Remove sessions idle longer than max_lifetime; return how many."""
        cdef double limit = _as_seconds(max_lifetime, "max_lifetime")
        cdef double now = self._now()
        self._saw_lifetime(limit)
        cdef void* node = self._table.head
        # Every session from the first whose second starts within the limit
        # on was last used no longer ago: none of them can be idle longer.
        if node == NULL or now - floor((<Session>node).last_used) <= limit:
            return 0
        # Allocated before the sweep holds a borrowed pointer: allocating may
        # run the cyclic collector, and with it destructors that remove sessions.
        cdef list removed = []
        cdef Session s
        node = self._table.head
        while node != NULL:
            s = <Session>node
            if now - floor(s.last_used) <= limit:
                break
            node = s._next
            # Within the second where the limit falls, sessions are in the
            # order they entered it: a live one is passed over, not a stop.
            if now - s.last_used > limit:
                self._remove(s)
                self._expired += 1
                # Victims are released together once the loop is done, so no
                # destructor runs while sessions are still being collected
                # (appending grows the list's array only: no collection).
                removed.append(s)
        s = None
        return len(removed)

    def sessions(self):
        """Live sessions, least recently used first (to the second), without marking them used."""
        return _LiveSessions(self, self._order())

    def save(self, path, **options):
        """Write every live session to path (atomic, mode 0600, versioned); return how many.

        See memsession.snapshot.save for the options and the file format.
        """
        from .snapshot import save

        return save(self, path, **options)

    def load(self, path, **options):
        """Store the sessions a snapshot at path holds (an empty store only); return how many.

        A damaged or foreign file raises memsession.SnapshotError and stores
        nothing. See memsession.snapshot.load for the options.
        """
        from .snapshot import load

        return load(self, path, **options)

    def _order(self):
        """The live sessions, least recently used first (a plain list, for snapshots)."""
        cdef list snapshot = []
        cdef void* node = self._table.head
        while node != NULL:
            snapshot.append(<Session>node)
            node = (<Session>node)._next
        return snapshot

    def _export(self, list order, Py_ssize_t start, Py_ssize_t stop, double to_wall):
        """Columns of order[start:stop] still held: ids, created, last used (wall clock),
        permanent (bytes: 0 default, 1 no, 2 yes), cookie offsets, the sessions."""
        cdef list sids = [], created = [], used = [], cookies = [], datas = []
        cdef bytearray flags = bytearray()
        cdef Session s
        cdef Py_ssize_t i
        if start < 0:
            start = 0
        if stop > len(order):
            stop = len(order)
        for i in range(start, stop):
            s = <Session>order[i]
            if self._holds(s):
                sids.append(s.sid)
                created.append(s.created + to_wall)
                used.append(s.last_used + to_wall)
                flags.append(s._permanent)
                cookies.append(<double>s._cookie_off)
                # The session itself: the caller encodes a chunk in one C call
                # (JSON or pickle), during which no other thread can change it.
                datas.append(s)
        return sids, created, used, bytes(flags), cookies, datas

    def _import(self, list sids, list created, list used, bytes flags, list cookies, list datas):
        """Store checked columns (least recently used first, store clock) in this empty store."""
        cdef Session s
        cdef Py_ssize_t i, n = len(sids)
        if self._table.used:
            raise ValueError(f"the store must be empty to load a snapshot (it holds {self._table.used} sessions)")
        for i in range(n):
            if type(sids[i]) is not str or not sids[i]:
                raise ValueError("snapshot ids must be non-empty str")
        if n:
            self._grow(n)
        for i in range(n):
            s = Session.__new__(Session)
            s.sid = sids[i]
            s.created = created[i]
            s.last_used = used[i]
            s._permanent = flags[i]
            s._cookie_off = <float>(<double>cookies[i])
            PyDict_Update(s, datas[i])
            s._stored = 1
            self._put(s)
            self._append(s)
        self._created += n
        return n

    def stats(self):
        """Counters: live, hits, misses, created, destroyed, expired, evicted."""
        return {
            "live": self._table.used,
            "hits": self._hits,
            "misses": self._misses,
            "created": self._created,
            "destroyed": self._destroyed,
            "expired": self._expired,
            "evicted": self._evicted,
        }

    cdef inline bint _holds(self, Session s):
        return self._find(s.sid) is s

    def __len__(self):
        return self._table.used

    def __contains__(self, sid):
        if not isinstance(sid, str):
            return False
        return self._find(str.__str__(sid) if type(sid) is not str else <str>sid) is not None

    def __repr__(self):
        return f"<MemoryProvider live={self._table.used} max_sessions={self.max_sessions}>"


cdef void _install_table_hooks() except *:
    # The table's offset inside a provider, for the collector's hooks.
    cdef MemoryProvider probe = MemoryProvider.__new__(MemoryProvider)
    ms_install(<PyObject*>probe, &probe._table)


_install_table_hooks()


cdef extern from *:
    """
    typedef PyObject *(*ms_fastcall)(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);
    static ms_fastcall ms_read_general;
    static PyMethodDef ms_read_def;

    /* Put entry in place of the type's session_read method, keeping its
       name and doc; calls entry does not take go to the method it replaces. */
    static int ms_install_read(PyTypeObject *type, ms_fastcall entry) {
        PyObject *method = PyDict_GetItemString(type->tp_dict, "session_read");
        if (method == NULL || !PyObject_TypeCheck(method, &PyMethodDescr_Type)) return 0;
        PyMethodDef *general = ((PyMethodDescrObject *)method)->d_method;
        if (general->ml_flags != (METH_FASTCALL | METH_KEYWORDS)) return 0;
        ms_read_def = *general;
        ms_read_def.ml_meth = (PyCFunction)(void (*)(void))entry;
        PyObject *fast = PyDescr_NewMethod(type, &ms_read_def);
        if (fast == NULL) return -1;
        /* Set before the type holds the entry, which calls it. */
        ms_read_general = (ms_fastcall)(void (*)(void))general->ml_meth;
        int failed = PyDict_SetItemString(type->tp_dict, "session_read", fast);
        Py_DECREF(fast);
        if (failed) ms_read_general = NULL;
        PyType_Modified(type);
        return failed;
    }

    /* The limit a lifetime argument gives without parsing (-1: none), or
       -2 when it needs the general path: anything but None or a float >= 0. */
    static inline double ms_plain_limit(PyObject *lifetime) {
        if (lifetime == Py_None) return -1.0;
        if (PyFloat_CheckExact(lifetime) && PyFloat_AS_DOUBLE(lifetime) >= 0.0) {
            return PyFloat_AS_DOUBLE(lifetime);
        }
        return -2.0;
    }

    static int ms_read_installed(void) { return ms_read_general != NULL; }

    static inline int ms_plain_sid(PyObject *sid) {
        return PyUnicode_CheckExact(sid) && PyUnicode_GET_LENGTH(sid) > 0;
    }
    """
    ctypedef PyObject* ms_arg "PyObject *const"
    ctypedef object (*ms_fastcall)(object, ms_arg*, Py_ssize_t, PyObject*)
    ms_fastcall ms_read_general
    int ms_install_read(type t, ms_fastcall entry) except -1
    double ms_plain_limit(PyObject* lifetime) noexcept
    bint ms_plain_sid(PyObject* sid) noexcept
    bint ms_read_installed() noexcept


cdef object _session_read_entry(object self, ms_arg* args, Py_ssize_t nargs, PyObject* kwnames):
    # The usual call, read(sid, lifetime) by position with an exact str and a
    # float (or no lifetime), goes straight to _read. Cython's general
    # argument parsing (a new reference to each argument, the keyword checks)
    # cost 30 instructions a read, 3-9% of a read's time. Every other call
    # goes through that parsing, so its answers and errors stay the same.
    cdef double limit = -1.0
    if kwnames == NULL and (nargs == 1 or nargs == 2) and ms_plain_sid(args[0]):
        if nargs == 2:
            limit = ms_plain_limit(args[1])
        if limit >= -1.0:
            return (<MemoryProvider>self)._read(<str><object>args[0], limit)
    return ms_read_general(self, args, nargs, kwnames)


ms_install_read(MemoryProvider, _session_read_entry)


def _read_entry_installed():
    """Whether session_read's usual call takes its short path here (for tests)."""
    return ms_read_installed()


def _narrow_tags(MemoryProvider provider):
    """Give provider's table the 3-bit tags a session address above 48 bits forces (for tests)."""
    ms_narrow(&provider._table)
    return bool(provider._table.narrow)


@cython.final
cdef class _LiveSessions:
    """Iterator over a snapshot of a provider's list, skipping removed sessions."""

    cdef MemoryProvider _provider
    cdef list _snapshot
    cdef Py_ssize_t _pos

    def __cinit__(self, MemoryProvider provider, list snapshot):
        self._provider = provider
        self._snapshot = snapshot
        self._pos = 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef Session s
        while self._pos < len(self._snapshot):
            s = <Session>self._snapshot[self._pos]
            self._pos += 1
            if self._provider._holds(s):
                return s
        self._snapshot = []
        raise StopIteration


# Bits of RequestSession._flags (memsession.session.RequestFlag names them all).
cdef enum:
    _PENDING = 1
    _HTTPS = 4
    _HAD_COOKIE = 8
    _MODIFIED = 16
    _ACCESSED = 32
    _CHANGED = 48
    _NEW = 64
    _FRESH = 65

cdef object _MISSING = object()


cdef inline dict _plain(object record):
    # As _mirror: one step, whatever another request does to the record.
    if isinstance(record, dict):
        return dict(record)
    return dict(record.items())


cdef inline void _mirror(dict into, object record) except *:
    # Another record type (a Redis session, perhaps shared by requests of a
    # worker) copies its pairs in one step through items(), so a key another
    # request removes meanwhile cannot break the copy.
    if type(record) is Session:
        PyDict_Update(into, record)
    elif isinstance(record, dict):
        dict.update(into, record)
    else:
        dict.update(into, record.items())


@cython.final
cdef class RequestSession(dict):
    """One request's session: the data of a stored session, with flags of its own.

    Concurrent requests of one session share its data (with the memory
    provider, one object), but each has its own id and flags: regenerating or
    destroying moves only this request to another record. Every read goes to
    the record; the dict this object also is mirrors what this request sees,
    so code that takes it for a plain dict (json.dumps, a Flask or FastAPI
    view returning it) gets the data.
    """

    cdef public object _record
    cdef public str _sid
    cdef public int _flags
    cdef public object _owner
    cdef public object _doomed
    cdef object __weakref__

    def __init__(self, record, int flags, owner):
        _mirror(self, record)
        self._record = record
        self._sid = record.sid
        self._flags = flags
        self._owner = owner

    def _attach(self, record):
        """Move this request to another record (regenerate, destroy, a new id on a clash)."""
        self._record = record
        self._sid = record.sid
        dict.clear(self)
        _mirror(self, record)

    @property
    def sid(self):
        """This request's session id."""
        return self._sid

    @property
    def created(self):
        """When the session was stored, on the provider's clock."""
        return float(self._record.created)

    @property
    def last_used(self):
        """When the session was last used, on the provider's clock."""
        return float(self._record.last_used)

    @property
    def modified(self):
        """True when this request changed the data (set it after changing a value in place)."""
        return (self._flags & _MODIFIED) != 0

    @modified.setter
    def modified(self, value):
        if value:
            self._flags |= _CHANGED
        else:
            self._flags &= ~_MODIFIED

    @property
    def accessed(self):
        """True when this request read or changed the data (the response then varies by Cookie)."""
        return (self._flags & _ACCESSED) != 0

    @accessed.setter
    def accessed(self, value):
        if value:
            self._flags |= _ACCESSED
        else:
            self._flags &= ~_ACCESSED

    @property
    def new(self):
        """True when the session began during this request."""
        return (self._flags & _NEW) != 0

    @property
    def permanent(self):
        """Whether the cookie outlives the browser session (the Manager's cookie_persistent unless set)."""
        chosen = self._record.permanent
        return self._owner.cookie_persistent if chosen is None else bool(chosen)

    @permanent.setter
    def permanent(self, value):
        self._record.permanent = value

    def session_id(self):
        """The session's id."""
        return self._sid

    def set(self, key, value):
        """Store value under key."""
        self[key] = value

    def delete(self, key):
        """Remove key; no error when it is absent."""
        self.pop(key, None)

    def __getitem__(self, key):
        self._flags |= _ACCESSED
        cdef object record = self._record
        cdef PyObject* found
        if type(record) is Session:
            found = PyDict_GetItem(record, key)
            if found == NULL:
                raise KeyError(key)
            return <object>found
        return record[key]

    def __setitem__(self, key, value):
        cdef object record = self._record
        if type(record) is Session:
            PyDict_SetItem(record, key, value)
        else:
            record[key] = value
        PyDict_SetItem(self, key, value)
        self._flags |= _CHANGED

    def __delitem__(self, key):
        del self._record[key]
        dict.pop(self, key, None)
        self._flags |= _CHANGED

    def __contains__(self, key):
        self._flags |= _ACCESSED
        return key in self._record

    def __iter__(self):
        self._flags |= _ACCESSED
        return iter(list(self._record))

    def __reversed__(self):
        self._flags |= _ACCESSED
        return iter(list(self._record)[::-1])

    def __len__(self):
        self._flags |= _ACCESSED
        return len(self._record)

    def __bool__(self):
        return len(self) > 0

    @cython.binding(False)
    def get(self, key, default=None, /):
        """The value for key, or default."""
        self._flags |= _ACCESSED
        cdef object record = self._record
        cdef PyObject* found
        if type(record) is Session:
            found = PyDict_GetItem(record, key)
            return default if found == NULL else <object>found
        return record.get(key, default)

    def keys(self):
        """The keys, as of now."""
        self._flags |= _ACCESSED
        return _plain(self._record).keys()

    def items(self):
        """The (key, value) pairs, as of now."""
        self._flags |= _ACCESSED
        return _plain(self._record).items()

    def values(self):
        """The values, as of now."""
        self._flags |= _ACCESSED
        return _plain(self._record).values()

    def pop(self, key, default=_MISSING):
        """Remove key and return its value (or default; KeyError without one)."""
        self._flags |= _ACCESSED
        if key in self._record:
            self._flags |= _MODIFIED
            dict.pop(self, key, None)
            return self._record.pop(key) if default is _MISSING else self._record.pop(key, default)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self):
        """Remove and return the last inserted (key, value) pair."""
        self._flags |= _ACCESSED
        keys = list(self._record)
        if not keys:
            raise KeyError("popitem(): session is empty")
        key = keys[len(keys) - 1]  # wraparound is off in this module
        return key, self.pop(key)

    def setdefault(self, key, default=None):
        """Return self[key], storing default first when key is absent."""
        self._flags |= _ACCESSED
        found = self._record.get(key, _MISSING)
        if found is not _MISSING:
            return found
        self[key] = default
        return default

    def update(self, *args, **kwargs):
        """Update from a mapping or iterable of pairs and keyword arguments."""
        new = dict(*args, **kwargs)
        self._record.update(new)
        PyDict_Update(self, new)
        self._flags |= _CHANGED

    def clear(self):
        """Remove all data."""
        self._flags |= _ACCESSED
        dict.clear(self)
        if len(self._record):
            self._record.clear()
            self._flags |= _MODIFIED

    def __ior__(self, other):
        self.update(other)
        return self

    def __or__(self, other):
        return {**self.copy(), **other}

    def copy(self):
        """A plain dict of the data."""
        self._flags |= _ACCESSED
        return _plain(self._record)

    def __eq__(self, other):
        if isinstance(other, RequestSession):
            other = _plain((<RequestSession>other)._record)
        return _plain(self._record) == other

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __reduce__(self):
        # A copy or pickle of a request's session is its data; ids stay with the store.
        return (dict, (_plain(self._record),))

    def __repr__(self):
        return f"RequestSession({_short(self._sid)!r}, {_plain(self._record)!r})"


cdef inline RequestSession _request_session(Session record, int flags, object owner):
    # As RequestSession(record, flags, owner), without parsing arguments.
    cdef RequestSession rs = RequestSession.__new__(RequestSession)
    PyDict_Update(rs, record)
    rs._record = record
    rs._sid = record.sid
    rs._flags = flags
    rs._owner = owner
    return rs


@cython.final
cdef class RequestGate:
    """A Manager's request path over this core's MemoryProvider, for the usual requests.

    start() and quiet() answer what Manager.session_start and
    Manager.session_cookie would, in one call each; None (start) or False
    (quiet) leaves the request to the Manager's general path. The gate holds
    no Manager: each call names its owner, so a Manager and its gate make no
    reference cycle.
    """

    cdef MemoryProvider _provider
    cdef object _new_id
    cdef str _prefix
    cdef bytes _raw_prefix  # the prefix as latin-1 bytes; None when it has other characters
    cdef Py_ssize_t _fast_len
    cdef double _limit
    cdef double _refresh

    def __init__(self, provider, prefix, limit, refresh, new_id):
        if type(provider) is not MemoryProvider:
            raise TypeError(f"provider must be a MemoryProvider, not {type(provider).__name__}")
        if type(prefix) is not str:
            raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
        if not callable(new_id):
            raise TypeError(f"new_id must be callable, not {type(new_id).__name__}")
        self._limit = _as_seconds(limit, "limit")
        self._refresh = _as_seconds(refresh, "refresh")
        self._provider = <MemoryProvider>provider
        self._prefix = <str>prefix
        try:
            self._raw_prefix = (<str>prefix).encode("latin-1")
        except UnicodeEncodeError:
            self._raw_prefix = None
        self._fast_len = PyUnicode_GET_LENGTH(prefix) + 43
        self._new_id = new_id

    @cython.binding(False)
    def start(self, header, https, owner, /):
        """owner's session for a request whose Cookie header is absent or one well-formed cookie of ours."""
        cdef int flags
        cdef Session s = None
        flags = self._flags(https)
        if flags < 0:
            return None
        if header is not None:
            if type(header) is not str or PyUnicode_GET_LENGTH(header) != self._fast_len:
                return None
            if not (<str>header).startswith(self._prefix):
                return None
            flags |= _HAD_COOKIE
            sid = (<str>header)[self._fast_len - 43:]
            if _is_id(sid):
                s = self._provider._read(<str>sid, self._limit)
        return self._session(s, flags, owner)

    @cython.binding(False)
    def start_bytes(self, raw, https, owner, /):
        """start() for the Cookie header as an ASGI server gives it: bytes, read as latin-1."""
        cdef int flags
        cdef Session s = None
        cdef const unsigned char* data
        cdef Py_ssize_t n = self._fast_len - 43
        flags = self._flags(https)
        if flags < 0:
            return None
        if raw is not None:
            if type(raw) is not bytes or PyBytes_GET_SIZE(raw) != self._fast_len or self._raw_prefix is None:
                return None
            data = <const unsigned char*>PyBytes_AS_STRING(raw)
            if memcmp(data, PyBytes_AS_STRING(self._raw_prefix), n) != 0:
                return None
            flags |= _HAD_COOKIE
            if _id_chars(data + n):
                s = self._provider._read(<str>PyUnicode_DecodeASCII(<const char*>data + n, 43, NULL), self._limit)
        return self._session(s, flags, owner)

    cdef inline int _flags(self, object https) except -2:
        # A request's first flags from its https, or -1: not a bool, the Manager's to refuse.
        if self._provider is None:
            raise TypeError("RequestGate is not initialised")
        if https is True:
            return _HTTPS
        if https is False:
            return 0
        return -1

    cdef inline RequestSession _session(self, Session s, int flags, object owner):
        if s is None:
            # Through the method, as the twin does: its id checks stay out of this path.
            s = self._provider.session_new(self._new_id())
            flags |= _FRESH
        return _request_session(s, flags, owner)

    @cython.binding(False)
    def quiet(self, session, https, owner, /):
        """True when owner's response needs no cookie and the store no change (session_cookie: None)."""
        if type(session) is not RequestSession or (https is not True and https is not False):
            return False
        cdef RequestSession rs = <RequestSession>session
        if rs._owner is not owner or rs._flags & _PENDING:
            return False
        if type(rs._record) is not Session:
            return False
        cdef Session s = <Session>rs._record
        if rs._flags & _MODIFIED and PyDict_Size(s) == 0:
            return False
        return s.last_used - (s.created + <double>s._cookie_off) < self._refresh

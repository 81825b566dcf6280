/* SPDX-License-Identifier: Apache-2.0 */
#include "placement.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* Resource fields our proto subset does not declare: they arrive as unknown
 * fields. A resource carrying one is special (a volume or a mount disk, revocable,
 * shared, from a resource provider) and cannot be split like a plain amount. */
#define RESOURCE_FIELD_DISK        7
#define RESOURCE_FIELD_REVOCABLE   9
#define RESOURCE_FIELD_SHARED      10
#define RESOURCE_FIELD_PROVIDER_ID 12

#define PORT_HIGHEST 65535u
/* Mesos' fixed point: scalars have three decimals. */
#define MILLI 1000

typedef enum Kind {
        KIND_CPUS,
        KIND_MEM,
        KIND_DISK,
        KIND_PORTS,
        _KIND_MAX,
        _KIND_INVALID = -EINVAL,
} Kind;

static const char *const kind_names[_KIND_MAX] = {
        [KIND_CPUS] = "cpus",
        [KIND_MEM] = "mem",
        [KIND_DISK] = "disk",
        [KIND_PORTS] = "ports",
};

static const PlacementReject kind_rejects[_KIND_MAX] = {
        [KIND_CPUS] = PLACEMENT_REJECT_INSUFFICIENT_CPUS,
        [KIND_MEM] = PLACEMENT_REJECT_INSUFFICIENT_MEMORY,
        [KIND_DISK] = PLACEMENT_REJECT_INSUFFICIENT_DISK,
        [KIND_PORTS] = PLACEMENT_REJECT_INSUFFICIENT_PORTS,
};

static const char *const reject_names[_PLACEMENT_REJECT_MAX] = {
        [PLACEMENT_REJECT_INVALID_OFFER] = "InvalidOffer",
        [PLACEMENT_REJECT_INVALID_REQUEST] = "InvalidRequest",
        [PLACEMENT_REJECT_INSUFFICIENT_CPUS] = "InsufficientCpus",
        [PLACEMENT_REJECT_INSUFFICIENT_MEMORY] = "InsufficientMemory",
        [PLACEMENT_REJECT_INSUFFICIENT_DISK] = "InsufficientDisk",
        [PLACEMENT_REJECT_INSUFFICIENT_PORTS] = "InsufficientPorts",
        [PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT] = "UnfulfilledConstraint",
};

const char *placement_reject_to_string(PlacementReject r)
{
        if (r < 0 || r >= _PLACEMENT_REJECT_MAX)
                return NULL;
        return reject_names[r];
}

/* Formats a message of at most PLACEMENT_REASON_MAX bytes into the arena
 * (truncated past that: a reason is for people, its start matters). */
_printf_(2, 3) static const char *reason_printf(Arena *a, const char *fmt, ...)
{
        char buf[PLACEMENT_REASON_MAX];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        return arena_strndup(a, buf, MIN((size_t)n, sizeof(buf) - 1));
}

/* ---- values ---- */

static bool amount_to_milli(double v, int64_t *ret)
{
        if (!isfinite(v) || v < 0 || v > PLACEMENT_SCALAR_MAX)
                return false;
        *ret = llround(v * MILLI);
        return true;
}

/* "1.5", "2", "0.001": milli-units as Mesos prints amounts. */
static const char *milli_format(int64_t m, char buf[static 32])
{
        int n = snprintf(buf, 32, "%" PRId64 ".%03" PRId64, m / MILLI, m % MILLI);

        while (n > 0 && buf[n - 1] == '0')
                buf[--n] = 0;
        if (n > 0 && buf[n - 1] == '.')
                buf[--n] = 0;
        return buf;
}

static int cmp_range_ptr(const void *a, const void *b)
{
        const Mesos__V1__Value__Range *x = *(Mesos__V1__Value__Range *const *)a;
        const Mesos__V1__Value__Range *y = *(Mesos__V1__Value__Range *const *)b;

        if (x->begin != y->begin)
                return x->begin < y->begin ? -1 : 1;
        return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_str_ptr(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends to buf at *len; false when it does not fit (NUL included). */
_printf_(4, 5) static bool append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf + *len, size - *len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= size - *len)
                return false;
        *len += (size_t)n;
        return true;
}

int placement_attribute_format(const Mesos__V1__Attribute *a, char *buf, size_t size)
{
        size_t len = 0;

        if (!a || !buf || size == 0)
                return -EINVAL;
        size = MIN(size, (size_t)PLACEMENT_VALUE_MAX + 1);
        buf[0] = 0;

        switch (a->type) {
        case MESOS__V1__VALUE__TYPE__TEXT:
                if (!a->text || !a->text->value)
                        return -EINVAL;
                if (!append(buf, size, &len, "%s", a->text->value))
                        return -ENAMETOOLONG;
                return (int)len;

        case MESOS__V1__VALUE__TYPE__SCALAR: {
                double x;
                int n;

                if (!a->scalar || !isfinite(a->scalar->value))
                        return -EINVAL;
                /* three decimals at most, as Mesos keeps them; no "-0". Past
                 * 1e15 a double has no decimals left to round. */
                x = a->scalar->value;
                if (fabs(x) < 1e15)
                        x = round(x * MILLI) / MILLI;
                n = snprintf(buf, size, "%.3f", x == 0 ? 0.0 : x);
                if (n < 0 || (size_t)n >= size)
                        return -ENAMETOOLONG;
                while (buf[n - 1] == '0')
                        buf[--n] = 0;
                if (buf[n - 1] == '.')
                        buf[--n] = 0;
                return n;
        }

        case MESOS__V1__VALUE__TYPE__RANGES: {
                /* each range takes at least 4 bytes ("1-2,"): more cannot fit */
                const Mesos__V1__Value__Range *sorted[PLACEMENT_VALUE_MAX / 4];

                if (!a->ranges || (a->ranges->n_range > 0 && !a->ranges->range))
                        return -EINVAL;
                if (a->ranges->n_range > ELEMENTSOF(sorted))
                        return -ENAMETOOLONG;
                for (size_t i = 0; i < a->ranges->n_range; i++) {
                        if (!a->ranges->range[i])
                                return -EINVAL;
                        sorted[i] = a->ranges->range[i];
                }
                qsort(sorted, a->ranges->n_range, sizeof(sorted[0]), cmp_range_ptr);
                if (!append(buf, size, &len, "["))
                        return -ENAMETOOLONG;
                for (size_t i = 0; i < a->ranges->n_range; i++)
                        if (!append(buf, size, &len, "%s%" PRIu64 "-%" PRIu64, i > 0 ? "," : "",
                                    sorted[i]->begin, sorted[i]->end))
                                return -ENAMETOOLONG;
                if (!append(buf, size, &len, "]"))
                        return -ENAMETOOLONG;
                return (int)len;
        }

        case MESOS__V1__VALUE__TYPE__SET: {
                /* each item takes at least a comma */
                const char *sorted[PLACEMENT_VALUE_MAX];

                if (!a->set || (a->set->n_item > 0 && !a->set->item))
                        return -EINVAL;
                if (a->set->n_item > ELEMENTSOF(sorted))
                        return -ENAMETOOLONG;
                for (size_t i = 0; i < a->set->n_item; i++) {
                        if (!a->set->item[i])
                                return -EINVAL;
                        sorted[i] = a->set->item[i];
                }
                qsort(sorted, a->set->n_item, sizeof(sorted[0]), cmp_str_ptr);
                if (!append(buf, size, &len, "{"))
                        return -ENAMETOOLONG;
                for (size_t i = 0; i < a->set->n_item; i++)
                        if (!append(buf, size, &len, "%s%s", i > 0 ? "," : "", sorted[i]))
                                return -ENAMETOOLONG;
                if (!append(buf, size, &len, "}"))
                        return -ENAMETOOLONG;
                return (int)len;
        }

        default:
                return -EINVAL;
        }
}

/* ---- offers ---- */

typedef struct PortRange {
        uint32_t begin, end; /* inclusive */
} PortRange;

/* One offered Resource we may take from, with what is left of it. */
typedef struct Pool {
        const Mesos__V1__Resource *resource;
        Kind kind;
        bool reserved;
        int64_t free;      /* milli-units; for ports, the number of free ports */
        PortRange *ranges; /* ports: free ranges, sorted and disjoint */
        size_t n_ranges, cap_ranges;
} Pool;

typedef struct OfferView {
        const Mesos__V1__Offer *offer;
        const char *hostname; /* NULL when the offer is unusable */
        Pool *pools;          /* by kind, reserved pools first within a kind */
        size_t first[_KIND_MAX + 1];
        int64_t free[_KIND_MAX];
        PlacementAttribute *attrs;
        size_t n_attrs;
} OfferView;

static Kind kind_from_name(const char *name)
{
        for (Kind k = 0; k < _KIND_MAX; k++)
                if (streq(name, kind_names[k]))
                        return k;
        return _KIND_INVALID;
}

static bool resource_is_reserved(const Mesos__V1__Resource *r)
{
        /* Resource.role is deprecated, but it is what Mesos sends frameworks
         * without the RESERVATION_REFINEMENT capability */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        const char *role = r->role;
#pragma GCC diagnostic pop

        return r->n_reservations > 0 || r->reservation || (role && !streq(role, "*"));
}

static bool resource_is_special(const Mesos__V1__Resource *r)
{
        for (unsigned i = 0; i < r->base.n_unknown_fields; i++)
                switch (r->base.unknown_fields[i].tag) {
                case RESOURCE_FIELD_DISK:
                case RESOURCE_FIELD_REVOCABLE:
                case RESOURCE_FIELD_SHARED:
                case RESOURCE_FIELD_PROVIDER_ID:
                        return true;
                default:
                        break;
                }
        return false;
}

static int cmp_port_range(const void *a, const void *b)
{
        const PortRange *x = a, *y = b;

        if (x->begin != y->begin)
                return x->begin < y->begin ? -1 : 1;
        return x->end < y->end ? -1 : x->end > y->end;
}

/* The index of the free range holding port in pool p, or -1. */
static ssize_t pool_find_port(const Pool *p, uint32_t port)
{
        size_t lo = 0, hi = p->n_ranges;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (p->ranges[mid].end < port)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < p->n_ranges && p->ranges[lo].begin <= port)
                return (ssize_t)lo;
        return -1;
}

/* Removes port from free range i of pool p, splitting the range when the port
 * is inside it: that is the only growth, one range per fixed port taken. */
static int pool_take_port(Pool *p, size_t i, uint32_t port)
{
        PortRange *r = &p->ranges[i];

        if (r->begin == port && r->end == port) {
                memmove(r, r + 1, (p->n_ranges - i - 1) * sizeof(*r));
                p->n_ranges--;
        } else if (r->begin == port)
                r->begin++;
        else if (r->end == port)
                r->end--;
        else {
                if (p->n_ranges == p->cap_ranges) {
                        size_t cap = MAX((size_t)4, p->cap_ranges * 2);
                        PortRange *n = reallocarray(p->ranges, cap, sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        p->ranges = n;
                        p->cap_ranges = cap;
                        r = &p->ranges[i];
                }
                memmove(r + 1, r, (p->n_ranges - i) * sizeof(*r));
                p->n_ranges++;
                r[0].end = port - 1;
                r[1].begin = port + 1;
        }
        p->free--;
        return 0;
}

static const char *offer_label(const OfferView *v, size_t i, char buf[static 64])
{
        if (v->hostname)
                snprintf(buf, 64, "host %.50s", v->hostname);
        else
                snprintf(buf, 64, "offer #%zu", i);
        return buf;
}

static const char *view_value(const OfferView *v, const char *field)
{
        if (streq(field, "hostname") || streq(field, "@hostname"))
                return v->hostname;
        for (size_t i = 0; i < v->n_attrs; i++)
                if (streq(v->attrs[i].name, field))
                        return v->attrs[i].value;
        return NULL;
}

static const char *instance_value(const PlacementInstance *in, const char *field)
{
        if (streq(field, "hostname") || streq(field, "@hostname"))
                return in->hostname;
        if (!in->attributes)
                return NULL;
        for (size_t i = 0; i < in->n_attributes; i++)
                if (in->attributes[i].name && streq(in->attributes[i].name, field))
                        return in->attributes[i].value;
        return NULL;
}

/* ---- counts per value ---- */

/* Open addressing, string keys borrowed from the input or the offer views,
 * sized up front for every key the call can add: it never fills. */
typedef struct CountMap {
        const char **keys;
        uint32_t *counts;
        size_t mask;
        uint32_t n_positive; /* values with a non-zero count */
        uint32_t max_count;
        /* GROUP_BY only: hist[c] = values with count c, to keep min_positive
         * (the lowest non-zero count) exact in O(1) per added instance. */
        uint32_t *hist;
        size_t hist_size;
        uint32_t min_positive;
} CountMap;

static uint64_t hash_str(const char *s)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 1099511628211ULL;
        return h;
}

static int countmap_init(CountMap *m, size_t max_keys, bool with_hist)
{
        size_t cap = 16;

        while (cap < max_keys * 2)
                cap *= 2;
        m->keys = calloc(cap, sizeof(*m->keys));
        m->counts = calloc(cap, sizeof(*m->counts));
        if (!m->keys || !m->counts)
                return -ENOMEM;
        m->mask = cap - 1;
        if (with_hist) {
                m->hist_size = max_keys + 2;
                m->hist = calloc(m->hist_size, sizeof(*m->hist));
                if (!m->hist)
                        return -ENOMEM;
        }
        return 0;
}

static void countmap_done(CountMap *m)
{
        free(m->keys);
        free(m->counts);
        free(m->hist);
        *m = (CountMap){};
}

static size_t countmap_slot(const CountMap *m, const char *key)
{
        for (size_t i = hash_str(key) & m->mask;; i = (i + 1) & m->mask)
                if (!m->keys[i] || streq(m->keys[i], key))
                        return i;
}

static uint32_t countmap_get(const CountMap *m, const char *key)
{
        if (!m->keys)
                return 0;
        size_t i = countmap_slot(m, key);
        return m->keys[i] ? m->counts[i] : 0;
}

static void countmap_add(CountMap *m, const char *key)
{
        size_t i = countmap_slot(m, key);
        uint32_t c;

        m->keys[i] = key;
        c = m->counts[i]++;
        if (c == 0)
                m->n_positive++;
        m->max_count = MAX(m->max_count, c + 1);
        if (m->hist && c + 1 < m->hist_size) {
                if (c > 0)
                        m->hist[c]--;
                m->hist[c + 1]++;
                if (c == 0)
                        m->min_positive = 1;
                else if (c == m->min_positive && m->hist[c] == 0)
                        m->min_positive = c + 1;
        }
}

/* ---- apps ---- */

typedef struct AppState {
        bool ready;
        const char *error; /* the app cannot be evaluated (arena) */
        size_t n_requests; /* in this call: bounds what the maps must hold */
        uint32_t total;    /* instances, including those placed in this call */
        CountMap hosts;    /* instances per hostname: spreading */
        CountMap *maps;    /* per constraint; unused (no keys) for LIKE, UNLIKE, IS */
        size_t n_maps;
        bool has_group_by;
        /* The last request of this app that found no offer, while the app's
         * counts have not changed since: an identical request fails the same way
         * (offers only shrink), so it reuses that answer instead of scanning. */
        bool failed;
        size_t failed_request;
} AppState;

static bool op_counts(ConstraintOp op)
{
        return op == CONSTRAINT_UNIQUE || op == CONSTRAINT_CLUSTER || op == CONSTRAINT_GROUP_BY ||
               op == CONSTRAINT_MAX_PER;
}

/* ---- one call ---- */

typedef struct Reason {
        PlacementReject kind;
        size_t offer;
        size_t constraint; /* UNFULFILLED_CONSTRAINT */
        bool missing;      /* ... because the offer lacks the field */
        uint32_t port;     /* INSUFFICIENT_PORTS for a fixed port */
        int64_t need, have;
        const char *text; /* INVALID_REQUEST */
} Reason;

/* One piece of a launch: an amount (or ports) taken from one pool. */
typedef struct Take {
        Pool *pool;
        int64_t amount;
} Take;

typedef struct Ctx {
        const PlacementInput *in;
        PlacementResult *res;
        OfferView *views;
        Pool *pools;
        size_t n_pools;
        PlacementAttribute *attrs;
        AppState *apps;
        size_t *cands;
        Take *takes; /* 2 per pool of the largest offer: task and executor parts */
        size_t max_offer_pools;
        uint8_t *scratch; /* packed Resource being copied */
        size_t scratch_size;
        PortRange range_scratch[PLACEMENT_RANGES_MAX];
        /* the request being placed */
        PlacementRequestResult *rr;
        Reason ring[PLACEMENT_REASONS_MAX];
        size_t ring_n, ring_next;
} Ctx;

static void reject(Ctx *c, Reason r)
{
        c->rr->rejects[r.kind]++;
        c->ring[c->ring_next] = r;
        c->ring_next = (c->ring_next + 1) % PLACEMENT_REASONS_MAX;
        c->ring_n = MIN(c->ring_n + 1, (size_t)PLACEMENT_REASONS_MAX);
}

static const char *reason_format(Ctx *c, const Reason *r)
{
        Arena *a = c->res->arena;
        const OfferView *v = r->kind == PLACEMENT_REJECT_INVALID_REQUEST ? NULL : &c->views[r->offer];
        char label[64] = "", need[32], have[32];

        if (v)
                offer_label(v, r->offer, label);

        switch (r->kind) {
        case PLACEMENT_REJECT_INVALID_REQUEST:
                return r->text;
        case PLACEMENT_REJECT_INVALID_OFFER:
                return reason_printf(a, "%s: offer not usable: %s", label,
                                     strna(c->res->offers[r->offer].error));
        case PLACEMENT_REJECT_INSUFFICIENT_PORTS:
                if (r->port > 0)
                        return reason_printf(a, "%s: no free port %" PRIu32, label, r->port);
                return reason_printf(a, "%s: insufficient ports (need %" PRId64 ", free %" PRId64 ")", label,
                                     r->need, r->have);
        case PLACEMENT_REJECT_INSUFFICIENT_CPUS:
        case PLACEMENT_REJECT_INSUFFICIENT_MEMORY:
        case PLACEMENT_REJECT_INSUFFICIENT_DISK: {
                const char *what = r->kind == PLACEMENT_REJECT_INSUFFICIENT_CPUS     ? "cpus"
                                   : r->kind == PLACEMENT_REJECT_INSUFFICIENT_MEMORY ? "mem"
                                                                                     : "disk";
                return reason_printf(a, "%s: insufficient %s (need %s, free %s)", label, what,
                                     milli_format(r->need, need), milli_format(r->have, have));
        }
        case PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT: {
                const PlacementApp *app = &c->in->apps[c->in->requests[c->rr - c->res->requests].app];
                const Constraint *k = &app->constraints[r->constraint];
                char arg[48] = "";

                if (k->value)
                        snprintf(arg, sizeof(arg), ":%.40s", k->value);
                else if (k->number > 0)
                        snprintf(arg, sizeof(arg), ":%" PRIu32, k->number);
                return reason_printf(a, "%s: constraint %.60s:%s%s not satisfied%s%.60s%s", label, k->field,
                                     strna(constraint_op_to_string(k->op)), arg,
                                     r->missing ? " (no attribute " : "", r->missing ? k->field : "",
                                     r->missing ? ")" : "");
        }
        default:
                return "unknown reason";
        }
}

/* Turns the ring of the request being placed into its reasons, oldest first. */
static int reasons_finish(Ctx *c)
{
        size_t start = (c->ring_next + PLACEMENT_REASONS_MAX - c->ring_n) % PLACEMENT_REASONS_MAX;

        for (size_t i = 0; i < c->ring_n; i++) {
                const char *s = reason_format(c, &c->ring[(start + i) % PLACEMENT_REASONS_MAX]);
                if (!s)
                        return -ENOMEM;
                c->rr->reasons[i] = s;
        }
        c->rr->n_reasons = c->ring_n;
        return 0;
}

/* Marks offer i unusable with a message; returns 0 (or -ENOMEM). */
_printf_(3, 4) static int offer_invalid(Ctx *c, size_t i, const char *fmt, ...)
{
        char buf[PLACEMENT_REASON_MAX];
        va_list ap;
        const char *s;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        s = arena_strndup(c->res->arena, buf, strlen(buf));
        if (!s)
                return -ENOMEM;
        c->res->offers[i].error = s;
        c->views[i].hostname = NULL;
        c->views[i].n_attrs = 0;
        for (size_t k = 0; k < _KIND_MAX; k++)
                c->views[i].free[k] = 0;
        for (size_t k = 0; k <= _KIND_MAX; k++)
                c->views[i].first[k] = 0;
        return 0;
}

/* Checks one offered ports resource and copies its ranges into the pool,
 * sorted. Returns 0, 1 when the offer is unusable (message set), or -ENOMEM. */
static int pool_parse_ports(Ctx *c, size_t oi, Pool *p, size_t *n_offer_ranges)
{
        const Mesos__V1__Value__Ranges *rs = p->resource->ranges;
        size_t n = 0;
        int r;

        if (p->resource->type != MESOS__V1__VALUE__TYPE__RANGES || !rs || (rs->n_range > 0 && !rs->range)) {
                r = offer_invalid(c, oi, "resource ports: not a RANGES value");
                return r < 0 ? r : 1;
        }
        if (rs->n_range > PLACEMENT_RANGES_MAX - *n_offer_ranges) {
                r = offer_invalid(c, oi, "resource ports: more than %u ranges", PLACEMENT_RANGES_MAX);
                return r < 0 ? r : 1;
        }
        for (size_t i = 0; i < rs->n_range; i++) {
                const Mesos__V1__Value__Range *g = rs->range[i];
                if (!g) {
                        r = offer_invalid(c, oi, "resource ports: range %zu missing", i);
                        return r < 0 ? r : 1;
                }
                if (g->begin > g->end) {
                        r = offer_invalid(
                                c, oi, "resource ports: range %" PRIu64 "-%" PRIu64 " ends before it begins",
                                g->begin, g->end);
                        return r < 0 ? r : 1;
                }
                if (g->end > PORT_HIGHEST) {
                        r = offer_invalid(c, oi,
                                          "resource ports: range %" PRIu64 "-%" PRIu64 " beyond port %u",
                                          g->begin, g->end, PORT_HIGHEST);
                        return r < 0 ? r : 1;
                }
                if (g->end == 0)
                        continue; /* port 0 is not a port one can be given */
                c->range_scratch[*n_offer_ranges + n] =
                        (PortRange){ .begin = (uint32_t)MAX(g->begin, (uint64_t)1),
                                     .end = (uint32_t)g->end };
                n++;
        }
        p->cap_ranges = MAX(n, (size_t)1);
        p->ranges = malloc(p->cap_ranges * sizeof(PortRange));
        if (!p->ranges)
                return -ENOMEM;
        memcpy(p->ranges, c->range_scratch + *n_offer_ranges, n * sizeof(PortRange));
        qsort(p->ranges, n, sizeof(PortRange), cmp_port_range);
        p->n_ranges = n;
        p->free = 0;
        for (size_t i = 0; i < n; i++)
                p->free += p->ranges[i].end - p->ranges[i].begin + 1;
        *n_offer_ranges += n;
        return 0;
}

/* Builds the view of offer oi in its slices of the pool and attribute arrays.
 * Returns 0 (the offer may have been found unusable: then its error is set) or
 * -ENOMEM. */
static int offer_parse(Ctx *c, size_t oi, Pool *pools, PlacementAttribute *attrs)
{
        const Mesos__V1__Offer *o = c->in->offers[oi];
        OfferView *v = &c->views[oi];
        int8_t kinds[PLACEMENT_OFFER_RESOURCES_MAX];
        size_t n_pools = 0, n_ranges = 0;
        int r;

        *v = (OfferView){ .offer = o, .pools = pools, .attrs = attrs };
        if (!o)
                return offer_invalid(c, oi, "offer missing");
        if (!o->agent_id || !o->agent_id->value || !o->agent_id->value[0])
                return offer_invalid(c, oi, "no agent id");
        if (!o->hostname || !o->hostname[0])
                return offer_invalid(c, oi, "no hostname");
        if (strnlen(o->hostname, PLACEMENT_HOSTNAME_MAX + 1) > PLACEMENT_HOSTNAME_MAX)
                return offer_invalid(c, oi, "hostname longer than %u bytes", PLACEMENT_HOSTNAME_MAX);
        if (o->n_resources > PLACEMENT_OFFER_RESOURCES_MAX)
                return offer_invalid(c, oi, "%zu resources, more than %u", o->n_resources,
                                     PLACEMENT_OFFER_RESOURCES_MAX);
        if (o->n_resources > 0 && !o->resources)
                return offer_invalid(c, oi, "resources missing");
        if (o->n_attributes > PLACEMENT_OFFER_ATTRIBUTES_MAX)
                return offer_invalid(c, oi, "%zu attributes, more than %u", o->n_attributes,
                                     PLACEMENT_OFFER_ATTRIBUTES_MAX);
        if (o->n_attributes > 0 && !o->attributes)
                return offer_invalid(c, oi, "attributes missing");

        /* classify first, so pools can be laid out by kind, reserved first */
        for (size_t i = 0; i < o->n_resources; i++) {
                const Mesos__V1__Resource *res = o->resources[i];
                int64_t m;
                Kind k;

                kinds[i] = -1;
                if (!res || !res->name)
                        return offer_invalid(c, oi, "resource %zu malformed", i);
                k = kind_from_name(res->name);
                if (k < 0 || resource_is_special(res))
                        continue;
                if (k != KIND_PORTS) {
                        if (res->type != MESOS__V1__VALUE__TYPE__SCALAR || !res->scalar)
                                return offer_invalid(c, oi, "resource %s: not a SCALAR value", res->name);
                        if (!amount_to_milli(res->scalar->value, &m))
                                return offer_invalid(c, oi, "resource %s: invalid amount %g", res->name,
                                                     res->scalar->value);
                }
                kinds[i] = (int8_t)k;
        }
        for (Kind k = 0; k < _KIND_MAX; k++) {
                v->first[k] = n_pools;
                for (int pass = 0; pass < 2; pass++)
                        for (size_t i = 0; i < o->n_resources; i++) {
                                const Mesos__V1__Resource *res = o->resources[i];
                                Pool *p;

                                if (kinds[i] != (int8_t)k || resource_is_reserved(res) != (pass == 0))
                                        continue;
                                p = &pools[n_pools++];
                                *p = (Pool){ .resource = res, .kind = k, .reserved = pass == 0 };
                                if (k == KIND_PORTS) {
                                        r = pool_parse_ports(c, oi, p, &n_ranges);
                                        if (r != 0)
                                                return r < 0 ? r : 0;
                                } else
                                        (void)amount_to_milli(res->scalar->value, &p->free);
                                v->free[k] += p->free;
                        }
        }
        v->first[_KIND_MAX] = n_pools;

        /* the same port in two ranges would be handed out twice */
        if (n_ranges > 1) {
                qsort(c->range_scratch, n_ranges, sizeof(PortRange), cmp_port_range);
                for (size_t i = 1; i < n_ranges; i++)
                        if (c->range_scratch[i].begin <= c->range_scratch[i - 1].end)
                                return offer_invalid(c, oi,
                                                     "resource ports: ranges overlap at port %" PRIu32,
                                                     c->range_scratch[i].begin);
        }

        for (size_t i = 0; i < o->n_attributes; i++) {
                const Mesos__V1__Attribute *a = o->attributes[i];
                char buf[PLACEMENT_VALUE_MAX + 1];

                if (!a || !a->name)
                        return offer_invalid(c, oi, "attribute %zu malformed", i);
                r = placement_attribute_format(a, buf, sizeof(buf));
                if (r == -ENAMETOOLONG)
                        return offer_invalid(c, oi, "attribute %.64s: value longer than %u bytes", a->name,
                                             PLACEMENT_VALUE_MAX);
                if (r < 0)
                        return offer_invalid(c, oi, "attribute %.64s: malformed value", a->name);
                attrs[i].name = a->name;
                attrs[i].value = arena_strndup(c->res->arena, buf, (size_t)r);
                if (!attrs[i].value)
                        return -ENOMEM;
        }
        v->n_attrs = o->n_attributes;
        v->hostname = o->hostname;
        return 0;
}

static bool view_usable(const OfferView *v)
{
        return v->hostname != NULL;
}

static int offers_parse(Ctx *c)
{
        const PlacementInput *in = c->in;
        size_t n_pools = 0, n_attrs = 0, at_pool = 0, at_attr = 0;
        int r;

        /* one slice of each array per offer, sized by what it declares */
        for (size_t i = 0; i < in->n_offers; i++) {
                const Mesos__V1__Offer *o = in->offers[i];
                if (!o)
                        continue;
                n_pools += MIN(o->n_resources, (size_t)PLACEMENT_OFFER_RESOURCES_MAX);
                n_attrs += MIN(o->n_attributes, (size_t)PLACEMENT_OFFER_ATTRIBUTES_MAX);
                c->max_offer_pools =
                        MAX(c->max_offer_pools, MIN(o->n_resources, (size_t)PLACEMENT_OFFER_RESOURCES_MAX));
        }
        c->views = calloc(MAX(in->n_offers, (size_t)1), sizeof(OfferView));
        c->pools = calloc(MAX(n_pools, (size_t)1), sizeof(Pool));
        c->attrs = calloc(MAX(n_attrs, (size_t)1), sizeof(PlacementAttribute));
        c->takes = calloc(2 * MAX(c->max_offer_pools, (size_t)1), sizeof(Take));
        c->cands = calloc(MAX(in->n_offers, (size_t)1), sizeof(size_t));
        if (!c->views || !c->pools || !c->attrs || !c->takes || !c->cands)
                return -ENOMEM;
        c->n_pools = n_pools;

        for (size_t i = 0; i < in->n_offers; i++) {
                const Mesos__V1__Offer *o = in->offers[i];

                r = offer_parse(c, i, c->pools + at_pool, c->attrs + at_attr);
                if (r < 0)
                        return r;
                if (o) {
                        at_pool += MIN(o->n_resources, (size_t)PLACEMENT_OFFER_RESOURCES_MAX);
                        at_attr += MIN(o->n_attributes, (size_t)PLACEMENT_OFFER_ATTRIBUTES_MAX);
                }
        }
        return 0;
}

/* ---- apps ---- */

/* Checks an app and counts where its instances are. Errors make every request
 * of the app fail with that message. Returns 0 or -ENOMEM. */
static int app_prepare(Ctx *c, size_t ai)
{
        const PlacementApp *app = &c->in->apps[ai];
        AppState *a = &c->apps[ai];
        const char *id = app->id ? app->id : "(app)";
        size_t max_keys;
        int r;

        a->ready = true;
        if (app->n_constraints > PLACEMENT_CONSTRAINTS_MAX) {
                a->error = reason_printf(c->res->arena, "%.100s: %zu constraints, more than %u", id,
                                         app->n_constraints, PLACEMENT_CONSTRAINTS_MAX);
                return a->error ? 0 : -ENOMEM;
        }
        if ((app->n_constraints > 0 && !app->constraints) || (app->n_instances > 0 && !app->instances)) {
                a->error = reason_printf(c->res->arena, "%.100s: constraints or instances missing", id);
                return a->error ? 0 : -ENOMEM;
        }
        if (app->n_instances > PLACEMENT_INSTANCES_MAX) {
                a->error = reason_printf(c->res->arena, "%.100s: %zu instances, more than %u", id,
                                         app->n_instances, PLACEMENT_INSTANCES_MAX);
                return a->error ? 0 : -ENOMEM;
        }
        for (size_t i = 0; i < app->n_constraints; i++) {
                const Constraint *k = &app->constraints[i];
                const char *problem = NULL;

                if (!k->field || !k->field[0])
                        problem = "no field";
                else if (k->op < 0 || k->op >= _CONSTRAINT_OP_MAX)
                        problem = "unknown operator";
                else if ((k->op == CONSTRAINT_LIKE || k->op == CONSTRAINT_UNLIKE) && !k->has_regex)
                        problem = "no compiled regex";
                else if (k->op == CONSTRAINT_IS && !k->value)
                        problem = "no value";
                if (problem) {
                        a->error =
                                reason_printf(c->res->arena, "%.100s: constraint %zu: %s", id, i, problem);
                        return a->error ? 0 : -ENOMEM;
                }
                a->has_group_by = a->has_group_by || k->op == CONSTRAINT_GROUP_BY;
        }

        /* every key a map can get: one per existing instance and one per
         * instance this call may place */
        max_keys = app->n_instances + a->n_requests;
        r = countmap_init(&a->hosts, max_keys, false);
        if (r < 0)
                return r;
        a->maps = calloc(MAX(app->n_constraints, (size_t)1), sizeof(CountMap));
        if (!a->maps)
                return -ENOMEM;
        a->n_maps = app->n_constraints;
        for (size_t i = 0; i < app->n_constraints; i++)
                if (op_counts(app->constraints[i].op)) {
                        r = countmap_init(&a->maps[i], max_keys,
                                          app->constraints[i].op == CONSTRAINT_GROUP_BY);
                        if (r < 0)
                                return r;
                }

        for (size_t j = 0; j < app->n_instances; j++) {
                const PlacementInstance *in = &app->instances[j];

                if (in->hostname)
                        countmap_add(&a->hosts, in->hostname);
                for (size_t i = 0; i < app->n_constraints; i++) {
                        const char *value;
                        if (!a->maps[i].keys)
                                continue;
                        value = instance_value(in, app->constraints[i].field);
                        if (value)
                                countmap_add(&a->maps[i], value);
                }
        }
        a->total = (uint32_t)app->n_instances;
        return 0;
}

static void app_record(Ctx *c, size_t ai, const OfferView *v)
{
        const PlacementApp *app = &c->in->apps[ai];
        AppState *a = &c->apps[ai];

        a->total++;
        a->failed = false;
        countmap_add(&a->hosts, v->hostname);
        for (size_t i = 0; i < app->n_constraints; i++) {
                const char *value;
                if (!a->maps[i].keys)
                        continue;
                value = view_value(v, app->constraints[i].field);
                if (value)
                        countmap_add(&a->maps[i], value);
        }
}

/* Everything but GROUP_BY, which needs all candidates first. */
static bool constraint_holds(const AppState *a, size_t ci, const Constraint *k, const char *value)
{
        const CountMap *m = &a->maps[ci];

        if (!value)
                return k->op == CONSTRAINT_UNLIKE;
        switch (k->op) {
        case CONSTRAINT_UNIQUE:
                return countmap_get(m, value) == 0;
        case CONSTRAINT_CLUSTER:
                if (k->value)
                        return streq(value, k->value);
                return m->n_positive == 0 || countmap_get(m, value) == m->max_count;
        case CONSTRAINT_GROUP_BY:
                return true;
        case CONSTRAINT_LIKE:
                return regexec(&k->regex, value, 0, NULL, 0) == 0;
        case CONSTRAINT_UNLIKE:
                return regexec(&k->regex, value, 0, NULL, 0) != 0;
        case CONSTRAINT_MAX_PER:
                return countmap_get(m, value) < k->number;
        case CONSTRAINT_IS:
                return streq(value, k->value);
        default:
                return false;
        }
}

/* ---- requests ---- */

static const char *request_check(Ctx *c, const PlacementRequest *q)
{
        Arena *a = c->res->arena;
        const struct {
                const char *name;
                double v;
        } amounts[] = {
                { "cpus", q->cpus },
                { "mem", q->mem },
                { "disk", q->disk },
                { "executor cpus", q->executor_cpus },
                { "executor mem", q->executor_mem },
                { "executor disk", q->executor_disk },
        };

        if (q->app >= c->in->n_apps)
                return reason_printf(a, "request: app %zu out of range", q->app);
        for (size_t i = 0; i < ELEMENTSOF(amounts); i++) {
                int64_t m;
                if (!amount_to_milli(amounts[i].v, &m))
                        return reason_printf(a, "request: invalid %s amount %g", amounts[i].name,
                                             amounts[i].v);
        }
        if (q->n_ports > PLACEMENT_PORTS_MAX)
                return reason_printf(a, "request: %zu ports, more than %u", q->n_ports, PLACEMENT_PORTS_MAX);
        if (q->n_ports > 0 && !q->ports)
                return reason_printf(a, "request: ports missing");
        for (size_t i = 0; i < q->n_ports; i++) {
                if (q->ports[i] > PORT_HIGHEST)
                        return reason_printf(a, "request: port %" PRIu32 " beyond %u", q->ports[i],
                                             PORT_HIGHEST);
                for (size_t j = 0; j < i && q->ports[i] != 0; j++)
                        if (q->ports[j] == q->ports[i])
                                return reason_printf(a, "request: port %" PRIu32 " requested twice",
                                                     q->ports[i]);
        }
        return NULL;
}

static bool request_same_shape(const PlacementRequest *x, const PlacementRequest *y)
{
        /* exact comparison on purpose: equal inputs give equal answers */
        return x->app == y->app && x->cpus == y->cpus && x->mem == y->mem && x->disk == y->disk &&
               x->executor_cpus == y->executor_cpus && x->executor_mem == y->executor_mem &&
               x->executor_disk == y->executor_disk && x->n_ports == y->n_ports &&
               (x->n_ports == 0 || memcmp(x->ports, y->ports, x->n_ports * sizeof(uint32_t)) == 0);
}

typedef struct Need {
        int64_t task[KIND_PORTS], executor[KIND_PORTS];
        size_t n_fixed;
} Need;

static bool offer_has_port(const OfferView *v, uint32_t port)
{
        for (size_t i = v->first[KIND_PORTS]; i < v->first[KIND_PORTS + 1]; i++)
                if (pool_find_port(&v->pools[i], port) >= 0)
                        return true;
        return false;
}

/* Resources and constraints other than GROUP_BY; rejects with the first reason. */
static bool offer_fits(Ctx *c, size_t oi, const PlacementRequest *q, const Need *need)
{
        const OfferView *v = &c->views[oi];
        const PlacementApp *app = &c->in->apps[q->app];
        const AppState *a = &c->apps[q->app];
        int64_t dynamic;

        if (!view_usable(v)) {
                reject(c, (Reason){ .kind = PLACEMENT_REJECT_INVALID_OFFER, .offer = oi });
                return false;
        }
        for (Kind k = 0; k < KIND_PORTS; k++) {
                int64_t total = need->task[k] + need->executor[k];
                if (v->free[k] < total) {
                        reject(c, (Reason){ .kind = kind_rejects[k],
                                            .offer = oi,
                                            .need = total,
                                            .have = v->free[k] });
                        return false;
                }
        }
        for (size_t i = 0; i < q->n_ports; i++)
                if (q->ports[i] != 0 && !offer_has_port(v, q->ports[i])) {
                        reject(c, (Reason){ .kind = PLACEMENT_REJECT_INSUFFICIENT_PORTS,
                                            .offer = oi,
                                            .port = q->ports[i] });
                        return false;
                }
        /* the fixed ports are free, so they come out of the free count */
        dynamic = (int64_t)(q->n_ports - need->n_fixed);
        if (v->free[KIND_PORTS] - (int64_t)need->n_fixed < dynamic) {
                reject(c, (Reason){ .kind = PLACEMENT_REJECT_INSUFFICIENT_PORTS,
                                    .offer = oi,
                                    .need = (int64_t)q->n_ports,
                                    .have = v->free[KIND_PORTS] });
                return false;
        }
        for (size_t i = 0; i < app->n_constraints; i++) {
                const Constraint *k = &app->constraints[i];
                const char *value = view_value(v, k->field);
                if (!constraint_holds(a, i, k, value)) {
                        reject(c, (Reason){ .kind = PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT,
                                            .offer = oi,
                                            .constraint = i,
                                            .missing = !value });
                        return false;
                }
        }
        return true;
}

/* GROUP_BY over the candidates that passed everything else: an offer may take
 * the instance when its value's count is the lowest among the known values.
 * Returns how many candidates are left (compacted in place). */
static size_t group_by_filter(Ctx *c, const PlacementRequest *q, size_t n)
{
        const PlacementApp *app = &c->in->apps[q->app];
        const AppState *a = &c->apps[q->app];

        for (size_t ci = 0; ci < app->n_constraints && n > 0; ci++) {
                const Constraint *k = &app->constraints[ci];
                const CountMap *m = &a->maps[ci];
                bool unseen = false;
                uint32_t lowest;
                size_t kept = 0;

                if (k->op != CONSTRAINT_GROUP_BY)
                        continue;
                for (size_t j = 0; j < n && !unseen; j++)
                        unseen = countmap_get(m, view_value(&c->views[c->cands[j]], k->field)) == 0;
                /* an offered value nobody uses yet, or fewer values in use than
                 * expected: the lowest count is 0 */
                lowest = unseen || m->n_positive < MAX(k->number, (uint32_t)1) ? 0 : m->min_positive;
                for (size_t j = 0; j < n; j++) {
                        size_t oi = c->cands[j];
                        if (countmap_get(m, view_value(&c->views[oi], k->field)) <= lowest)
                                c->cands[kept++] = oi;
                        else
                                reject(c, (Reason){ .kind = PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT,
                                                    .offer = oi,
                                                    .constraint = ci });
                }
                n = kept;
        }
        return n;
}

/* Spreading: fewer instances of the app on the host, then more free cpus, then
 * more free mem; the earlier offer on a tie. */
static bool offer_better(const Ctx *c, const AppState *a, size_t x, size_t y)
{
        const OfferView *vx = &c->views[x], *vy = &c->views[y];
        uint32_t hx = countmap_get(&a->hosts, vx->hostname), hy = countmap_get(&a->hosts, vy->hostname);

        if (hx != hy)
                return hx < hy;
        if (vx->free[KIND_CPUS] != vy->free[KIND_CPUS])
                return vx->free[KIND_CPUS] > vy->free[KIND_CPUS];
        if (vx->free[KIND_MEM] != vy->free[KIND_MEM])
                return vx->free[KIND_MEM] > vy->free[KIND_MEM];
        return x < y;
}

/* ---- launching ---- */

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

/* A copy of the offered Resource with only the amount (or the port ranges)
 * replaced: packing a shallow copy and unpacking it keeps name, type, role,
 * reservations, allocation_info and unknown fields, and gives an owned message. */
static int resource_copy(Ctx *c, const Mesos__V1__Resource *orig, int64_t milli, const uint32_t *ports,
                         size_t n_ports, Mesos__V1__Resource **ret)
{
        Mesos__V1__Resource tmp = *orig;
        Mesos__V1__Value__Scalar scalar;
        Mesos__V1__Value__Ranges ranges;
        Mesos__V1__Value__Range range[PLACEMENT_PORTS_MAX], *range_ptrs[PLACEMENT_PORTS_MAX];
        Mesos__V1__Resource *copy;
        size_t size;

        if (ports) {
                uint32_t sorted[PLACEMENT_PORTS_MAX];
                size_t n = 0;

                memcpy(sorted, ports, n_ports * sizeof(uint32_t));
                qsort(sorted, n_ports, sizeof(uint32_t), cmp_u32);
                for (size_t i = 0; i < n_ports; i++) {
                        if (n > 0 && range[n - 1].end + 1 == sorted[i]) {
                                range[n - 1].end = sorted[i];
                                continue;
                        }
                        range[n] = (Mesos__V1__Value__Range)MESOS__V1__VALUE__RANGE__INIT;
                        range[n].begin = range[n].end = sorted[i];
                        range_ptrs[n] = &range[n];
                        n++;
                }
                ranges = *orig->ranges;
                ranges.n_range = n;
                ranges.range = range_ptrs;
                tmp.ranges = &ranges;
        } else {
                scalar = *orig->scalar;
                scalar.value = (double)milli / MILLI;
                tmp.scalar = &scalar;
        }

        size = mesos__v1__resource__get_packed_size(&tmp);
        if (size > MESOS_MESSAGE_MAX)
                return -EMSGSIZE;
        if (size > c->scratch_size) {
                uint8_t *p = realloc(c->scratch, size);
                if (!p)
                        return -ENOMEM;
                c->scratch = p;
                c->scratch_size = size;
        }
        mesos__v1__resource__pack(&tmp, c->scratch);
        ProtobufCAllocator alloc = arena_protobuf_allocator(c->res->arena);
        copy = mesos__v1__resource__unpack(&alloc, size, c->scratch);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* Takes amount from the pools of kind k in order (reserved first), appending
 * one Take per pool touched. */
static size_t take_scalar(OfferView *v, Kind k, int64_t amount, Take *takes, size_t n)
{
        for (size_t i = v->first[k]; i < v->first[k + 1] && amount > 0; i++) {
                Pool *p = &v->pools[i];
                int64_t t = MIN(p->free, amount);
                if (t <= 0)
                        continue;
                p->free -= t;
                v->free[k] -= t;
                amount -= t;
                takes[n++] = (Take){ .pool = p, .amount = t };
        }
        return n;
}

static int launch_commit(Ctx *c, size_t ri, size_t oi, const Need *need)
{
        const PlacementRequest *q = &c->in->requests[ri];
        OfferView *v = &c->views[oi];
        PlacementLaunch *l = &c->res->launches[c->res->n_launches];
        uint32_t *host_ports = NULL;
        Pool *port_pool[PLACEMENT_PORTS_MAX] = {};
        size_t n_task = 0, n_exec = 0, n_port_pools = 0, n_resources;
        Take *task = c->takes, *exec = c->takes + c->max_offer_pools;
        int r;

        for (Kind k = 0; k < KIND_PORTS; k++)
                n_task = take_scalar(v, k, need->task[k], task, n_task);
        for (Kind k = 0; k < KIND_PORTS; k++)
                n_exec = take_scalar(v, k, need->executor[k], exec, n_exec);

        if (q->n_ports > 0) {
                host_ports = arena_alloc(c->res->arena, q->n_ports * sizeof(uint32_t));
                if (!host_ports)
                        return -ENOMEM;
        }
        /* fixed ports first, so that no dynamic port takes one of them */
        for (size_t i = 0; i < q->n_ports; i++) {
                if (q->ports[i] == 0)
                        continue;
                for (size_t j = v->first[KIND_PORTS]; j < v->first[KIND_PORTS + 1]; j++) {
                        ssize_t at = pool_find_port(&v->pools[j], q->ports[i]);
                        if (at < 0)
                                continue;
                        r = pool_take_port(&v->pools[j], (size_t)at, q->ports[i]);
                        if (r < 0)
                                return r;
                        host_ports[i] = q->ports[i];
                        port_pool[i] = &v->pools[j];
                        break;
                }
        }
        for (size_t i = 0; i < q->n_ports; i++) {
                if (q->ports[i] != 0)
                        continue;
                for (size_t j = v->first[KIND_PORTS]; j < v->first[KIND_PORTS + 1]; j++) {
                        Pool *p = &v->pools[j];
                        if (p->n_ranges == 0)
                                continue;
                        /* the lowest free port: taking a range's first port never splits it */
                        host_ports[i] = p->ranges[0].begin;
                        port_pool[i] = p;
                        r = pool_take_port(p, 0, host_ports[i]);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        v->free[KIND_PORTS] -= (int64_t)q->n_ports;
        for (size_t i = 0; i < q->n_ports; i++)
                if (!port_pool[i])
                        return -EIO; /* offer_fits() said they were free: a bug, not bad input */

        /* one ports Resource per pool the ports came from */
        for (size_t i = 0; i < q->n_ports; i++) {
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = port_pool[j] == port_pool[i];
                n_port_pools += !seen;
        }

        n_resources = n_task + n_port_pools + n_exec;
        *l = (PlacementLaunch){
                .offer = oi,
                .request = ri,
                .host_ports = host_ports,
                .n_host_ports = q->n_ports,
        };
        if (n_resources > 0) {
                l->task_resources = arena_alloc(c->res->arena, n_resources * sizeof(Mesos__V1__Resource *));
                if (!l->task_resources)
                        return -ENOMEM;
        }
        /* counted as made from here on, so the result frees what is built */
        c->res->n_launches++;

        for (size_t i = 0; i < n_task; i++) {
                r = resource_copy(c, task[i].pool->resource, task[i].amount, NULL, 0,
                                  &l->task_resources[l->n_task_resources]);
                if (r < 0)
                        return r;
                l->n_task_resources++;
        }
        for (size_t i = 0; i < q->n_ports; i++) {
                uint32_t ports[PLACEMENT_PORTS_MAX];
                size_t n = 0;
                bool seen = false;

                for (size_t j = 0; j < i && !seen; j++)
                        seen = port_pool[j] == port_pool[i];
                if (seen)
                        continue;
                for (size_t j = i; j < q->n_ports; j++)
                        if (port_pool[j] == port_pool[i])
                                ports[n++] = host_ports[j];
                r = resource_copy(c, port_pool[i]->resource, 0, ports, n,
                                  &l->task_resources[l->n_task_resources]);
                if (r < 0)
                        return r;
                l->n_task_resources++;
        }
        l->executor_resources = l->task_resources ? l->task_resources + l->n_task_resources : NULL;
        for (size_t i = 0; i < n_exec; i++) {
                r = resource_copy(c, exec[i].pool->resource, exec[i].amount, NULL, 0,
                                  &l->executor_resources[l->n_executor_resources]);
                if (r < 0)
                        return r;
                l->n_executor_resources++;
        }
        if (l->n_executor_resources == 0)
                l->executor_resources = NULL;

        c->res->offers[oi].used = true;
        c->res->requests[ri].placed = true;
        c->res->requests[ri].launch = c->res->n_launches - 1;
        app_record(c, q->app, v);
        return 0;
}

static int request_place(Ctx *c, size_t ri)
{
        const PlacementRequest *q = &c->in->requests[ri];
        PlacementRequestResult *rr = &c->res->requests[ri];
        const char *problem;
        AppState *a;
        Need need = {};
        size_t n = 0, best;
        int r;

        c->rr = rr;
        c->ring_n = c->ring_next = 0;

        problem = request_check(c, q);
        if (!problem && !c->apps[q->app].ready) {
                r = app_prepare(c, q->app);
                if (r < 0)
                        return r;
        }
        if (!problem)
                problem = c->apps[q->app].error;
        if (problem) {
                rr->processed = (uint32_t)c->in->n_offers;
                rr->rejects[PLACEMENT_REJECT_INVALID_REQUEST] = (uint32_t)c->in->n_offers;
                rr->reasons[0] = problem;
                rr->n_reasons = 1;
                return 0;
        }

        a = &c->apps[q->app];
        if (a->failed && request_same_shape(&c->in->requests[a->failed_request], q)) {
                const PlacementRequestResult *prev = &c->res->requests[a->failed_request];
                *rr = *prev;
                return 0;
        }

        (void)amount_to_milli(q->cpus, &need.task[KIND_CPUS]);
        (void)amount_to_milli(q->mem, &need.task[KIND_MEM]);
        (void)amount_to_milli(q->disk, &need.task[KIND_DISK]);
        (void)amount_to_milli(q->executor_cpus, &need.executor[KIND_CPUS]);
        (void)amount_to_milli(q->executor_mem, &need.executor[KIND_MEM]);
        (void)amount_to_milli(q->executor_disk, &need.executor[KIND_DISK]);
        for (size_t i = 0; i < q->n_ports; i++)
                need.n_fixed += q->ports[i] != 0;

        rr->processed = (uint32_t)c->in->n_offers;
        for (size_t oi = 0; oi < c->in->n_offers; oi++)
                if (offer_fits(c, oi, q, &need))
                        c->cands[n++] = oi;
        if (a->has_group_by)
                n = group_by_filter(c, q, n);

        if (n == 0) {
                a->failed = true;
                a->failed_request = ri;
                return reasons_finish(c);
        }
        best = c->cands[0];
        for (size_t j = 1; j < n; j++)
                if (offer_better(c, a, c->cands[j], best))
                        best = c->cands[j];
        /* a placed request reports no rejections */
        memset(rr->rejects, 0, sizeof(rr->rejects));
        rr->processed = 0;
        return launch_commit(c, ri, best, &need);
}

static void ctx_done(Ctx *c)
{
        for (size_t i = 0; i < c->n_pools && c->pools; i++)
                free(c->pools[i].ranges);
        if (c->apps)
                for (size_t i = 0; i < c->in->n_apps; i++) {
                        AppState *a = &c->apps[i];
                        countmap_done(&a->hosts);
                        for (size_t j = 0; a->maps && j < a->n_maps; j++)
                                countmap_done(&a->maps[j]);
                        free(a->maps);
                }
        free(c->views);
        free(c->pools);
        free(c->attrs);
        free(c->apps);
        free(c->cands);
        free(c->takes);
        free(c->scratch);
}

PlacementResult *placement_result_free(PlacementResult *r)
{
        if (!r)
                return NULL;
        free(r->launches);
        free(r->offers);
        free(r->requests);
        arena_free(r->arena);
        free(r);
        return NULL;
}

int placement_compute(const PlacementInput *in, PlacementResult **ret)
{
        _cleanup_(placement_result_freep) PlacementResult *res = NULL;
        _cleanup_free_ Ctx *c = NULL;
        int r = 0;

        if (!in || !ret)
                return -EINVAL;
        if ((in->n_offers > 0 && !in->offers) || (in->n_apps > 0 && !in->apps) ||
            (in->n_requests > 0 && !in->requests))
                return -EINVAL;
        if (in->n_offers > PLACEMENT_OFFERS_MAX || in->n_requests > PLACEMENT_REQUESTS_MAX ||
            in->n_apps > PLACEMENT_APPS_MAX)
                return -E2BIG;

        res = calloc(1, sizeof(*res));
        if (!res)
                return -ENOMEM;
        res->arena = arena_new();
        res->offers = calloc(MAX(in->n_offers, (size_t)1), sizeof(PlacementOfferResult));
        res->requests = calloc(MAX(in->n_requests, (size_t)1), sizeof(PlacementRequestResult));
        res->launches = calloc(MAX(in->n_requests, (size_t)1), sizeof(PlacementLaunch));
        if (!res->arena || !res->offers || !res->requests || !res->launches)
                return -ENOMEM;
        res->n_offers = in->n_offers;
        res->n_requests = in->n_requests;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->in = in;
        c->res = res;
        c->apps = calloc(MAX(in->n_apps, (size_t)1), sizeof(AppState));
        if (!c->apps)
                r = -ENOMEM;
        if (r >= 0) {
                for (size_t i = 0; i < in->n_requests; i++)
                        if (in->requests[i].app < in->n_apps)
                                c->apps[in->requests[i].app].n_requests++;
                r = offers_parse(c);
        }
        for (size_t i = 0; r >= 0 && i < in->n_requests; i++)
                r = request_place(c, i);
        ctx_done(c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(res);
        return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for placement: resources fitting or not (each kind, executor on top,
 * fixed point), reserved pools before unreserved ones and faithful copies of
 * the offered Resources, fixed and dynamic host ports, every constraint
 * operator (true, false, missing attribute), balancing and spreading within one
 * round, bounded reasons, and hostile offers and requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

/* cmocka's float assertion works in float precision: amounts need double. */
#define assert_near(a, b) assert_near_at((a), (b), __FILE__, __LINE__)

static void assert_near_at(double a, double b, const char *file, int line)
{
        if (!(fabs(a - b) < 1e-9)) {
                print_error("%.12g != %.12g\n", a, b);
                _fail(file, line);
        }
}

/* ---- building offers ---- */

static char *xstrdup(const char *s)
{
        char *p = strdup(s);
        assert_non_null(p);
        return p;
}

static void *xcalloc(size_t n, size_t size)
{
        void *p = calloc(n, size);
        assert_non_null(p);
        return p;
}

static Mesos__V1__Resource *scalar_new(const char *name, double v)
{
        Mesos__V1__Resource *r = xcalloc(1, sizeof(*r));

        mesos__v1__resource__init(r);
        r->name = xstrdup(name);
        r->type = MESOS__V1__VALUE__TYPE__SCALAR;
        r->scalar = xcalloc(1, sizeof(*r->scalar));
        mesos__v1__value__scalar__init(r->scalar);
        r->scalar->value = v;
        return r;
}

static Mesos__V1__Value__Ranges *ranges_new(size_t n, const uint64_t (*g)[2])
{
        Mesos__V1__Value__Ranges *rs = xcalloc(1, sizeof(*rs));

        mesos__v1__value__ranges__init(rs);
        rs->n_range = n;
        rs->range = xcalloc(n ? n : 1, sizeof(*rs->range));
        for (size_t i = 0; i < n; i++) {
                rs->range[i] = xcalloc(1, sizeof(*rs->range[i]));
                mesos__v1__value__range__init(rs->range[i]);
                rs->range[i]->begin = g[i][0];
                rs->range[i]->end = g[i][1];
        }
        return rs;
}

static Mesos__V1__Resource *ports_new(size_t n, const uint64_t (*g)[2])
{
        Mesos__V1__Resource *r = xcalloc(1, sizeof(*r));

        mesos__v1__resource__init(r);
        r->name = xstrdup("ports");
        r->type = MESOS__V1__VALUE__TYPE__RANGES;
        r->ranges = ranges_new(n, g);
        return r;
}

static Mesos__V1__Resource *port_range(uint64_t begin, uint64_t end)
{
        const uint64_t g[1][2] = { { begin, end } };
        return ports_new(1, g);
}

/* Reserved in the refinement format, with allocation_info (MULTI_ROLE). */
static Mesos__V1__Resource *reserve(Mesos__V1__Resource *r, const char *role)
{
        Mesos__V1__Resource__ReservationInfo *ri = xcalloc(1, sizeof(*ri));

        mesos__v1__resource__reservation_info__init(ri);
        ri->has_type = true;
        ri->type = MESOS__V1__RESOURCE__RESERVATION_INFO__TYPE__DYNAMIC;
        ri->role = xstrdup(role);
        ri->principal = xstrdup("ops");
        r->n_reservations = 1;
        r->reservations = xcalloc(1, sizeof(*r->reservations));
        r->reservations[0] = ri;
        r->allocation_info = xcalloc(1, sizeof(*r->allocation_info));
        mesos__v1__resource__allocation_info__init(r->allocation_info);
        r->allocation_info->role = xstrdup(role);
        return r;
}

/* Reserved in the pre-refinement format: role plus reservation. */
static Mesos__V1__Resource *reserve_legacy(Mesos__V1__Resource *r, const char *role)
{
        r->reservation = xcalloc(1, sizeof(*r->reservation));
        mesos__v1__resource__reservation_info__init(r->reservation);
        r->reservation->principal = xstrdup("ops");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        r->role = xstrdup(role);
#pragma GCC diagnostic pop
        return r;
}

static const char *resource_role(const Mesos__V1__Resource *r)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        return r->role;
#pragma GCC diagnostic pop
}

static size_t varint(uint64_t v, uint8_t *out)
{
        size_t n = 0;

        do {
                out[n] = (uint8_t)(v & 0x7f);
                v >>= 7;
                if (v)
                        out[n] |= 0x80;
                n++;
        } while (v);
        return n;
}

/* Re-reads r with a LEN field `field` = payload appended: what a newer Mesos
 * would send in a field our proto subset does not know. */
static Mesos__V1__Resource *with_unknown_field(Mesos__V1__Resource *r, uint32_t field, const char *payload,
                                               uint8_t *ret_bytes, size_t *ret_len)
{
        uint8_t buf[512];
        size_t n = mesos__v1__resource__get_packed_size(r), start;
        Mesos__V1__Resource *u;

        assert_true(n + 32 + strlen(payload) < sizeof(buf));
        mesos__v1__resource__pack(r, buf);
        start = n;
        n += varint(((uint64_t)field << 3) | 2, buf + n);
        n += varint(strlen(payload), buf + n);
        memcpy(buf + n, payload, strlen(payload));
        n += strlen(payload);
        if (ret_bytes) {
                memcpy(ret_bytes, buf + start, n - start);
                *ret_len = n - start;
        }
        u = mesos__v1__resource__unpack(NULL, n, buf);
        assert_non_null(u);
        mesos__v1__resource__free_unpacked(r, NULL);
        return u;
}

static Mesos__V1__Offer *offer_new(const char *host)
{
        Mesos__V1__Offer *o = xcalloc(1, sizeof(*o));
        char id[300];

        mesos__v1__offer__init(o);
        o->id = xcalloc(1, sizeof(*o->id));
        mesos__v1__offer_id__init(o->id);
        snprintf(id, sizeof(id), "O-%s", host ? host : "none");
        o->id->value = xstrdup(id);
        o->agent_id = xcalloc(1, sizeof(*o->agent_id));
        mesos__v1__agent_id__init(o->agent_id);
        snprintf(id, sizeof(id), "A-%s", host ? host : "none");
        o->agent_id->value = xstrdup(id);
        o->hostname = host ? xstrdup(host) : NULL;
        return o;
}

static Mesos__V1__Offer *offer_add(Mesos__V1__Offer *o, Mesos__V1__Resource *r)
{
        o->resources = reallocarray(o->resources, o->n_resources + 1, sizeof(*o->resources));
        assert_non_null(o->resources);
        o->resources[o->n_resources++] = r;
        return o;
}

static Mesos__V1__Offer *offer_attribute(Mesos__V1__Offer *o, Mesos__V1__Attribute *a)
{
        o->attributes = reallocarray(o->attributes, o->n_attributes + 1, sizeof(*o->attributes));
        assert_non_null(o->attributes);
        o->attributes[o->n_attributes++] = a;
        return o;
}

static Mesos__V1__Attribute *text_attr(const char *name, const char *value)
{
        Mesos__V1__Attribute *a = xcalloc(1, sizeof(*a));

        mesos__v1__attribute__init(a);
        a->name = xstrdup(name);
        a->type = MESOS__V1__VALUE__TYPE__TEXT;
        a->text = xcalloc(1, sizeof(*a->text));
        mesos__v1__value__text__init(a->text);
        a->text->value = xstrdup(value);
        return a;
}

static Mesos__V1__Attribute *scalar_attr(const char *name, double v)
{
        Mesos__V1__Attribute *a = xcalloc(1, sizeof(*a));

        mesos__v1__attribute__init(a);
        a->name = xstrdup(name);
        a->type = MESOS__V1__VALUE__TYPE__SCALAR;
        a->scalar = xcalloc(1, sizeof(*a->scalar));
        mesos__v1__value__scalar__init(a->scalar);
        a->scalar->value = v;
        return a;
}

static Mesos__V1__Attribute *set_attr(const char *name, size_t n, const char *const *items)
{
        Mesos__V1__Attribute *a = xcalloc(1, sizeof(*a));

        mesos__v1__attribute__init(a);
        a->name = xstrdup(name);
        a->type = MESOS__V1__VALUE__TYPE__SET;
        a->set = xcalloc(1, sizeof(*a->set));
        mesos__v1__value__set__init(a->set);
        a->set->n_item = n;
        a->set->item = xcalloc(n ? n : 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                a->set->item[i] = xstrdup(items[i]);
        return a;
}

static Mesos__V1__Attribute *ranges_attr(const char *name, size_t n, const uint64_t (*g)[2])
{
        Mesos__V1__Attribute *a = xcalloc(1, sizeof(*a));

        mesos__v1__attribute__init(a);
        a->name = xstrdup(name);
        a->type = MESOS__V1__VALUE__TYPE__RANGES;
        a->ranges = ranges_new(n, g);
        return a;
}

/* A plain unreserved offer. */
static Mesos__V1__Offer *offer_std(const char *host, double cpus, double mem, double disk)
{
        Mesos__V1__Offer *o = offer_new(host);

        offer_add(o, scalar_new("cpus", cpus));
        offer_add(o, scalar_new("mem", mem));
        if (disk > 0)
                offer_add(o, scalar_new("disk", disk));
        return o;
}

static Mesos__V1__Offer *offer_rack(const char *host, const char *rack, double cpus)
{
        return offer_attribute(offer_std(host, cpus, 64 * 1024, 0), text_attr("rack", rack));
}

static void offers_free(Mesos__V1__Offer **offers, size_t n)
{
        for (size_t i = 0; i < n; i++)
                mesos__v1__offer__free_unpacked(offers[i], NULL);
}

/* ---- building requests and running ---- */

static PlacementRequest req(size_t app, double cpus, double mem)
{
        return (PlacementRequest){ .app = app, .cpus = cpus, .mem = mem };
}

static PlacementResult *run(Mesos__V1__Offer *const *offers, size_t n_offers, const PlacementApp *apps,
                            size_t n_apps, const PlacementRequest *requests, size_t n_requests)
{
        PlacementInput in = {
                .offers = (const Mesos__V1__Offer *const *)offers,
                .n_offers = n_offers,
                .apps = apps,
                .n_apps = n_apps,
                .requests = requests,
                .n_requests = n_requests,
        };
        PlacementResult *r = NULL;

        assert_int_equal(placement_compute(&in, &r), 0);
        assert_non_null(r);
        assert_int_equal(r->n_offers, n_offers);
        assert_int_equal(r->n_requests, n_requests);
        return r;
}

/* LIKE and UNLIKE carry a compiled regex anchored at both ends, as the
 * constraint parser builds them. */
static Constraint cons(const char *field, ConstraintOp op, const char *value, uint32_t number)
{
        Constraint c = { .field = (char *)field, .op = op, .value = (char *)value, .number = number };

        if (op == CONSTRAINT_LIKE || op == CONSTRAINT_UNLIKE) {
                char pattern[256];
                snprintf(pattern, sizeof(pattern), "^(%s)$", value);
                assert_int_equal(regcomp(&c.regex, pattern, REG_EXTENDED | REG_NOSUB), 0);
                c.has_regex = true;
        }
        return c;
}

static void cons_done(Constraint *c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (c[i].has_regex)
                        regfree(&c[i].regex);
}

static double amount(Mesos__V1__Resource *const *rs, size_t n, const char *name)
{
        double sum = 0;

        for (size_t i = 0; i < n; i++)
                if (strcmp(rs[i]->name, name) == 0) {
                        assert_non_null(rs[i]->scalar);
                        sum += rs[i]->scalar->value;
                }
        return sum;
}

static double task_amount(const PlacementLaunch *l, const char *name)
{
        return amount(l->task_resources, l->n_task_resources, name);
}

static double executor_amount(const PlacementLaunch *l, const char *name)
{
        return amount(l->executor_resources, l->n_executor_resources, name);
}

static const char *launch_host(const PlacementResult *r, Mesos__V1__Offer *const *offers, size_t request)
{
        assert_true(r->requests[request].placed);
        return offers[r->launches[r->requests[request].launch].offer]->hostname;
}

static void assert_reason(const PlacementRequestResult *rr, const char *needle)
{
        for (size_t i = 0; i < rr->n_reasons; i++)
                if (strstr(rr->reasons[i], needle))
                        return;
        for (size_t i = 0; i < rr->n_reasons; i++)
                print_error("reason %zu: %s\n", i, rr->reasons[i]);
        fail_msg("no reason contains \"%s\"", needle);
}

static const PlacementApp plain_app = { .id = "/plain" };

/* ---- resources ---- */

static void test_fit_basic(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_add(offer_std("a", 4, 1024, 100), port_range(31000, 31009)) };
        PlacementRequest q = req(0, 1, 128);
        PlacementResult *r;
        const PlacementLaunch *l;

        q.disk = 10;
        q.executor_cpus = 0.01;
        q.executor_mem = 16;
        r = run(offers, 1, &plain_app, 1, &q, 1);
        assert_int_equal(r->n_launches, 1);
        assert_true(r->offers[0].used);
        assert_null(r->offers[0].error);
        assert_true(r->requests[0].placed);
        assert_int_equal(r->requests[0].launch, 0);
        l = &r->launches[0];
        assert_int_equal(l->offer, 0);
        assert_int_equal(l->request, 0);
        assert_int_equal(l->n_task_resources, 3);
        assert_near(task_amount(l, "cpus"), 1);
        assert_near(task_amount(l, "mem"), 128);
        assert_near(task_amount(l, "disk"), 10);
        /* disk 0 for the executor: no Resource at all */
        assert_int_equal(l->n_executor_resources, 2);
        assert_near(executor_amount(l, "cpus"), 0.01);
        assert_near(executor_amount(l, "mem"), 16);
        assert_int_equal(l->n_host_ports, 0);
        placement_result_free(r);
        offers_free(offers, ELEMENTSOF(offers));
}

static void test_insufficient_each(void **state)
{
        static const uint32_t two_dynamic[] = { 0, 0 };
        const struct {
                PlacementRequest q;
                PlacementReject kind;
                const char *reason;
        } cases[] = {
                { { .cpus = 2, .mem = 64 },
                  PLACEMENT_REJECT_INSUFFICIENT_CPUS,
                  "host a: insufficient cpus (need 2, free 1)" },
                { { .cpus = 0.5, .mem = 256 },
                  PLACEMENT_REJECT_INSUFFICIENT_MEMORY,
                  "host a: insufficient mem (need 256, free 128)" },
                { { .cpus = 0.5, .mem = 64, .disk = 20.5 },
                  PLACEMENT_REJECT_INSUFFICIENT_DISK,
                  "host a: insufficient disk (need 20.5, free 10)" },
                { { .cpus = 0.5, .mem = 64, .ports = two_dynamic, .n_ports = 2 },
                  PLACEMENT_REJECT_INSUFFICIENT_PORTS,
                  "host a: insufficient ports (need 2, free 1)" },
        };
        Mesos__V1__Offer *offers[] = { offer_add(offer_std("a", 1, 128, 10), port_range(31000, 31000)) };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PlacementResult *r = run(offers, 1, &plain_app, 1, &cases[i].q, 1);

                assert_int_equal(r->n_launches, 0);
                assert_false(r->offers[0].used);
                assert_false(r->requests[0].placed);
                assert_int_equal(r->requests[0].processed, 1);
                for (PlacementReject k = 0; k < _PLACEMENT_REJECT_MAX; k++)
                        assert_int_equal(r->requests[0].rejects[k], k == cases[i].kind ? 1 : 0);
                assert_int_equal(r->requests[0].n_reasons, 1);
                assert_string_equal(r->requests[0].reasons[0], cases[i].reason);
                placement_result_free(r);
        }
        offers_free(offers, ELEMENTSOF(offers));
}

static void test_executor_counted(void **state)
{
        Mesos__V1__Offer *small[] = { offer_std("a", 1, 128, 0) };
        Mesos__V1__Offer *enough[] = { offer_std("b", 1.01, 144, 0) };
        PlacementRequest q = req(0, 1, 128);
        PlacementResult *r;

        q.executor_cpus = 0.01;
        q.executor_mem = 16;
        r = run(small, 1, &plain_app, 1, &q, 1);
        assert_false(r->requests[0].placed);
        assert_string_equal(r->requests[0].reasons[0], "host a: insufficient cpus (need 1.01, free 1)");
        placement_result_free(r);

        r = run(enough, 1, &plain_app, 1, &q, 1);
        assert_true(r->requests[0].placed);
        assert_near(task_amount(&r->launches[0], "cpus"), 1);
        assert_near(executor_amount(&r->launches[0], "cpus"), 0.01);
        assert_near(executor_amount(&r->launches[0], "mem"), 16);
        placement_result_free(r);
        offers_free(small, 1);
        offers_free(enough, 1);
}

static void test_fixed_point(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_std("a", 0.3, 128, 0) };
        volatile double a = 0.1, b = 0.2; /* 0.30000000000000004 > 0.3 in doubles */
        PlacementRequest fits = req(0, a + b, 1), over = req(0, 0.301, 1);
        PlacementResult *r;

        assert_true(a + b > 0.3);
        r = run(offers, 1, &plain_app, 1, &fits, 1);
        assert_true(r->requests[0].placed);
        assert_near(task_amount(&r->launches[0], "cpus"), 0.3);
        placement_result_free(r);

        r = run(offers, 1, &plain_app, 1, &over, 1);
        assert_false(r->requests[0].placed);
        assert_int_equal(r->requests[0].rejects[PLACEMENT_REJECT_INSUFFICIENT_CPUS], 1);
        placement_result_free(r);
        offers_free(offers, 1);
}

static void test_reserved_first_and_copied(void **state)
{
        Mesos__V1__Offer *o = offer_new("a");
        PlacementRequest q = req(0, 2, 300);
        PlacementResult *r;
        const PlacementLaunch *l;

        /* unreserved listed first on purpose: reserved pools still go first */
        offer_add(o, scalar_new("cpus", 2));
        offer_add(o, reserve(scalar_new("cpus", 1), "web"));
        offer_add(o, scalar_new("mem", 256));
        offer_add(o, reserve_legacy(scalar_new("mem", 256), "web"));
        q.executor_cpus = 0.5;
        r = run(&o, 1, &plain_app, 1, &q, 1);
        assert_true(r->requests[0].placed);
        l = &r->launches[0];
        assert_int_equal(l->n_task_resources, 4);

        /* cpus: the whole reservation, then 1 unreserved */
        assert_string_equal(l->task_resources[0]->name, "cpus");
        assert_near(l->task_resources[0]->scalar->value, 1);
        assert_int_equal(l->task_resources[0]->n_reservations, 1);
        assert_string_equal(l->task_resources[0]->reservations[0]->role, "web");
        assert_string_equal(l->task_resources[0]->reservations[0]->principal, "ops");
        assert_true(l->task_resources[0]->reservations[0]->has_type);
        assert_int_equal(l->task_resources[0]->reservations[0]->type,
                         MESOS__V1__RESOURCE__RESERVATION_INFO__TYPE__DYNAMIC);
        assert_non_null(l->task_resources[0]->allocation_info);
        assert_string_equal(l->task_resources[0]->allocation_info->role, "web");
        assert_string_equal(l->task_resources[1]->name, "cpus");
        assert_near(l->task_resources[1]->scalar->value, 1);
        assert_int_equal(l->task_resources[1]->n_reservations, 0);
        assert_null(l->task_resources[1]->allocation_info);
        assert_string_equal(resource_role(l->task_resources[1]), "*");

        /* mem: the legacy reservation (role + reservation), then 44 unreserved */
        assert_string_equal(l->task_resources[2]->name, "mem");
        assert_near(l->task_resources[2]->scalar->value, 256);
        assert_string_equal(resource_role(l->task_resources[2]), "web");
        assert_non_null(l->task_resources[2]->reservation);
        assert_string_equal(l->task_resources[2]->reservation->principal, "ops");
        assert_near(l->task_resources[3]->scalar->value, 44);
        assert_string_equal(resource_role(l->task_resources[3]), "*");

        /* the executor takes what is left, unreserved */
        assert_int_equal(l->n_executor_resources, 1);
        assert_near(l->executor_resources[0]->scalar->value, 0.5);
        assert_int_equal(l->executor_resources[0]->n_reservations, 0);
        placement_result_free(r);
        offers_free(&o, 1);
}

static void test_unknown_field_copied(void **state)
{
        uint8_t extra[64], packed[512];
        size_t extra_len = 0, n;
        Mesos__V1__Offer *o = offer_new("a");
        PlacementRequest q = req(0, 1.5, 0);
        PlacementResult *r;
        const PlacementLaunch *l;

        /* field 100: unknown to every Mesos so far, must survive */
        offer_add(o,
                  with_unknown_field(reserve(scalar_new("cpus", 2), "web"), 100, "xyz", extra, &extra_len));
        r = run(&o, 1, &plain_app, 1, &q, 1);
        assert_true(r->requests[0].placed);
        l = &r->launches[0];
        assert_int_equal(l->n_task_resources, 1);
        assert_int_equal(l->task_resources[0]->base.n_unknown_fields, 1);
        n = mesos__v1__resource__get_packed_size(l->task_resources[0]);
        assert_true(n <= sizeof(packed));
        mesos__v1__resource__pack(l->task_resources[0], packed);
        assert_non_null(memmem(packed, n, extra, extra_len));
        assert_near(l->task_resources[0]->scalar->value, 1.5);
        assert_string_equal(l->task_resources[0]->allocation_info->role, "web");
        placement_result_free(r);
        offers_free(&o, 1);
}

static void test_special_resources_left_alone(void **state)
{
        /* revocable (9), DiskInfo (7) and shared (10) resources: never split */
        Mesos__V1__Offer *o = offer_new("a");
        PlacementRequest big = req(0, 2, 0), small = req(0, 1, 0);
        PlacementResult *r;

        big.disk = 1;
        offer_add(o, with_unknown_field(scalar_new("cpus", 8), 9, "", NULL, NULL));
        offer_add(o, scalar_new("cpus", 1));
        offer_add(o, with_unknown_field(scalar_new("disk", 1000), 7, "", NULL, NULL));
        offer_add(o, with_unknown_field(scalar_new("mem", 1000), 10, "", NULL, NULL));
        r = run(&o, 1, &plain_app, 1, &big, 1);
        assert_false(r->requests[0].placed);
        assert_string_equal(r->requests[0].reasons[0], "host a: insufficient cpus (need 2, free 1)");
        placement_result_free(r);

        small.disk = 1;
        r = run(&o, 1, &plain_app, 1, &small, 1);
        assert_false(r->requests[0].placed);
        assert_string_equal(r->requests[0].reasons[0], "host a: insufficient disk (need 1, free 0)");
        placement_result_free(r);

        small.disk = 0;
        r = run(&o, 1, &plain_app, 1, &small, 1);
        assert_true(r->requests[0].placed);
        assert_int_equal(r->launches[0].task_resources[0]->base.n_unknown_fields, 0);
        placement_result_free(r);
        offers_free(&o, 1);
}

/* ---- ports ---- */

static void assert_ranges(const Mesos__V1__Resource *res, size_t n, const uint64_t (*want)[2])
{
        assert_string_equal(res->name, "ports");
        assert_non_null(res->ranges);
        assert_int_equal(res->ranges->n_range, n);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(res->ranges->range[i]->begin, want[i][0]);
                assert_int_equal(res->ranges->range[i]->end, want[i][1]);
        }
}

static void test_fixed_ports(void **state)
{
        static const uint32_t p1[] = { 31007, 31005 }, p2[] = { 31005 }, p3[] = { 8080 };
        static const uint64_t want[][2] = { { 31005, 31005 }, { 31007, 31007 } };
        Mesos__V1__Offer *offers[] = { offer_add(offer_std("a", 8, 1024, 0), port_range(31000, 31010)) };
        PlacementRequest q[3] = { req(0, 1, 1), req(0, 1, 1), req(0, 1, 1) };
        PlacementResult *r;
        const PlacementLaunch *l;

        q[0].ports = p1;
        q[0].n_ports = 2;
        q[1].ports = p2;
        q[1].n_ports = 1;
        q[2].ports = p3;
        q[2].n_ports = 1;
        r = run(offers, 1, &plain_app, 1, q, 3);
        assert_int_equal(r->n_launches, 1);
        l = &r->launches[0];
        assert_int_equal(l->n_host_ports, 2);
        assert_int_equal(l->host_ports[0], 31007);
        assert_int_equal(l->host_ports[1], 31005);
        assert_int_equal(l->n_task_resources, 3);
        assert_ranges(l->task_resources[2], 2, want);
        /* taken by the first instance of this round */
        assert_false(r->requests[1].placed);
        assert_string_equal(r->requests[1].reasons[0], "host a: no free port 31005");
        assert_int_equal(r->requests[1].rejects[PLACEMENT_REJECT_INSUFFICIENT_PORTS], 1);
        assert_false(r->requests[2].placed);
        assert_string_equal(r->requests[2].reasons[0], "host a: no free port 8080");
        placement_result_free(r);
        offers_free(offers, 1);
}

static void test_dynamic_ports_across_ranges(void **state)
{
        static const uint64_t unreserved[][2] = { { 32000, 32010 }, { 31000, 31001 } };
        static const uint64_t want_reserved[][2] = { { 31005, 31005 } };
        static const uint64_t want_unreserved[][2] = { { 31000, 31001 }, { 32000, 32000 } };
        static const uint32_t ports[] = { 0, 31001, 0, 0 };
        Mesos__V1__Offer *o = offer_std("a", 8, 1024, 0);
        PlacementRequest q = req(0, 1, 1);
        PlacementResult *r;
        const PlacementLaunch *l;

        offer_add(o, ports_new(2, unreserved));
        offer_add(o, reserve(port_range(31005, 31005), "web"));
        q.ports = ports;
        q.n_ports = 4;
        r = run(&o, 1, &plain_app, 1, &q, 1);
        assert_true(r->requests[0].placed);
        l = &r->launches[0];
        /* fixed first; then the reserved pool, then the lowest unreserved ports */
        assert_int_equal(l->n_host_ports, 4);
        assert_int_equal(l->host_ports[0], 31005);
        assert_int_equal(l->host_ports[1], 31001);
        assert_int_equal(l->host_ports[2], 31000);
        assert_int_equal(l->host_ports[3], 32000);
        /* cpus, mem, then one ports Resource per pool, in port-definition order */
        assert_int_equal(l->n_task_resources, 4);
        assert_ranges(l->task_resources[2], 1, want_reserved);
        assert_int_equal(l->task_resources[2]->n_reservations, 1);
        assert_ranges(l->task_resources[3], 2, want_unreserved);
        assert_int_equal(l->task_resources[3]->n_reservations, 0);
        placement_result_free(r);
        offers_free(&o, 1);
}

static void test_ports_wide_ranges(void **state)
{
        static uint32_t dyn[PLACEMENT_PORTS_MAX];
        static const uint32_t edges[] = { 65535, 1 };
        Mesos__V1__Offer *wide[] = { offer_add(offer_std("a", 100, 100000, 0), port_range(0, 65535)) };
        Mesos__V1__Offer *narrow[] = { offer_add(offer_std("b", 100, 100000, 0), port_range(31000, 32000)) };
        PlacementRequest q[17];
        PlacementResult *r;

        for (size_t i = 0; i < 17; i++) {
                q[i] = req(0, 1, 1);
                q[i].ports = dyn;
                q[i].n_ports = PLACEMENT_PORTS_MAX;
        }
        q[0].ports = edges;
        q[0].n_ports = 2;
        /* 1-65535 (port 0 is never handed out) */
        r = run(wide, 1, &plain_app, 1, q, 2);
        assert_int_equal(r->n_launches, 2);
        assert_int_equal(r->launches[0].host_ports[0], 65535);
        assert_int_equal(r->launches[0].host_ports[1], 1);
        for (size_t i = 0; i < PLACEMENT_PORTS_MAX; i++)
                assert_int_equal(r->launches[1].host_ports[i], 2 + i);
        placement_result_free(r);

        /* 31000-32000 is 1001 ports: 15 instances of 64 take 960 */
        r = run(narrow, 1, &plain_app, 1, q + 1, 16);
        assert_int_equal(r->n_launches, 15);
        for (size_t i = 0; i < 15; i++)
                for (size_t j = 0; j < PLACEMENT_PORTS_MAX; j++)
                        assert_int_equal(r->launches[i].host_ports[j], 31000 + i * PLACEMENT_PORTS_MAX + j);
        assert_false(r->requests[15].placed);
        assert_string_equal(r->requests[15].reasons[0], "host b: insufficient ports (need 64, free 41)");
        placement_result_free(r);
        offers_free(wide, 1);
        offers_free(narrow, 1);
}

static void test_many_on_one_offer(void **state)
{
        static const uint32_t ports[] = { 0 };
        Mesos__V1__Offer *offers[] = { offer_add(offer_std("a", 10, 1024, 0), port_range(31000, 31100)) };
        PlacementRequest q[12];
        PlacementResult *r;

        for (size_t i = 0; i < 12; i++) {
                q[i] = req(0, 1, 64);
                q[i].ports = ports;
                q[i].n_ports = 1;
        }
        r = run(offers, 1, &plain_app, 1, q, 12);
        assert_int_equal(r->n_launches, 10);
        for (size_t i = 0; i < 10; i++) {
                assert_int_equal(r->launches[i].offer, 0);
                assert_int_equal(r->launches[i].request, i);
                assert_int_equal(r->launches[i].host_ports[0], 31000 + i);
        }
        for (size_t i = 10; i < 12; i++) {
                assert_false(r->requests[i].placed);
                assert_string_equal(r->requests[i].reasons[0], "host a: insufficient cpus (need 1, free 0)");
        }
        /* the second identical failure reuses the first answer */
        assert_ptr_equal(r->requests[11].reasons[0], r->requests[10].reasons[0]);
        placement_result_free(r);
        offers_free(offers, 1);
}

static void test_two_apps_share_offers(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_std("a", 3, 1024, 0) };
        const PlacementApp apps[2] = { { .id = "/one" }, { .id = "/two" } };
        PlacementRequest q[3] = { req(0, 2, 1), req(1, 2, 1), req(1, 1, 1) };
        PlacementResult *r;

        r = run(offers, 1, apps, 2, q, 3);
        assert_true(r->requests[0].placed);
        assert_false(r->requests[1].placed);
        assert_true(r->requests[2].placed);
        assert_int_equal(r->n_launches, 2);
        placement_result_free(r);
        offers_free(offers, 1);
}

/* ---- spreading ---- */

static void test_spread_default(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_std("a", 10, 4096, 0), offer_std("b", 10, 4096, 0),
                                       offer_std("c", 10, 4096, 0) };
        const PlacementInstance existing[] = { { .hostname = "a" },
                                               { .hostname = "a" },
                                               { .hostname = "b" } };
        const PlacementApp with_existing = { .instances = existing, .n_instances = 3 };
        PlacementRequest q[6];
        PlacementResult *r;
        size_t per_host[3] = {};

        for (size_t i = 0; i < 6; i++)
                q[i] = req(0, 1, 64);
        r = run(offers, 3, &plain_app, 1, q, 6);
        assert_int_equal(r->n_launches, 6);
        for (size_t i = 0; i < 6; i++)
                per_host[r->launches[i].offer]++;
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(per_host[i], 2);
        placement_result_free(r);

        /* a runs 2, b 1: c first, then b (tie with c, more cpus left), then c */
        r = run(offers, 3, &with_existing, 1, q, 3);
        assert_string_equal(launch_host(r, offers, 0), "c");
        assert_string_equal(launch_host(r, offers, 1), "b");
        assert_string_equal(launch_host(r, offers, 2), "c");
        placement_result_free(r);
        offers_free(offers, 3);
}

static void test_spread_tiebreak(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_std("a", 2, 4096, 0), offer_std("b", 4, 1024, 0),
                                       offer_std("c", 4, 2048, 0), offer_std("d", 4, 2048, 0) };
        PlacementRequest q = req(0, 1, 64);
        PlacementResult *r;

        /* most cpus: b, c or d; most mem among them: c or d; earlier: c */
        r = run(offers, 4, &plain_app, 1, &q, 1);
        assert_string_equal(launch_host(r, offers, 0), "c");
        placement_result_free(r);
        offers_free(offers, 4);
}

/* ---- constraints ---- */

typedef struct ConstraintCase {
        const char *field;
        ConstraintOp op;
        const char *value;
        uint32_t number;
        const char *instance_racks[3]; /* existing instances, on hosts "x1".. with these racks */
        const char *instance_hosts[3];
        bool offer_has_rack; /* offer: host h1, rack r1 when true */
        bool placed;
} ConstraintCase;

static void test_constraint_operators(void **state)
{
        const ConstraintCase cases[] = {
                /* UNIQUE */
                { "hostname", CONSTRAINT_UNIQUE, NULL, 0, {}, { "h2" }, true, true },
                { "hostname", CONSTRAINT_UNIQUE, NULL, 0, {}, { "h1" }, true, false },
                { "@hostname", CONSTRAINT_UNIQUE, NULL, 0, {}, { "h1" }, true, false },
                { "rack", CONSTRAINT_UNIQUE, NULL, 0, { "r2" }, {}, true, true },
                { "rack", CONSTRAINT_UNIQUE, NULL, 0, { "r1" }, {}, true, false },
                { "rack", CONSTRAINT_UNIQUE, NULL, 0, {}, {}, false, false },
                /* CLUSTER with and without a value */
                { "hostname", CONSTRAINT_CLUSTER, "h1", 0, {}, {}, true, true },
                { "hostname", CONSTRAINT_CLUSTER, "h2", 0, {}, {}, true, false },
                { "rack", CONSTRAINT_CLUSTER, "r1", 0, {}, {}, true, true },
                { "rack", CONSTRAINT_CLUSTER, "r2", 0, {}, {}, true, false },
                { "rack", CONSTRAINT_CLUSTER, NULL, 0, {}, {}, true, true },
                { "rack", CONSTRAINT_CLUSTER, NULL, 0, { "r1", "r1" }, {}, true, true },
                { "rack", CONSTRAINT_CLUSTER, NULL, 0, { "r2" }, {}, true, false },
                { "rack", CONSTRAINT_CLUSTER, NULL, 0, { "r1", "r2", "r2" }, {}, true, false },
                { "rack", CONSTRAINT_CLUSTER, "r1", 0, {}, {}, false, false },
                { "rack", CONSTRAINT_CLUSTER, NULL, 0, {}, {}, false, false },
                /* GROUP_BY: the offer's rack must have the lowest count */
                { "rack", CONSTRAINT_GROUP_BY, NULL, 0, { "r1" }, {}, true, true },
                { "rack", CONSTRAINT_GROUP_BY, NULL, 0, { "r1", "r2" }, {}, true, true },
                { "rack", CONSTRAINT_GROUP_BY, NULL, 0, { "r1", "r1", "r2" }, {}, true, false },
                { "rack", CONSTRAINT_GROUP_BY, NULL, 2, { "r1" }, {}, true, false },
                { "rack", CONSTRAINT_GROUP_BY, NULL, 2, { "r1", "r2" }, {}, true, true },
                { "rack", CONSTRAINT_GROUP_BY, NULL, 3, { "r1", "r2" }, {}, true, false },
                { "rack", CONSTRAINT_GROUP_BY, NULL, 0, {}, {}, false, false },
                /* LIKE / UNLIKE: whole value; a missing attribute is only UNLIKE */
                { "rack", CONSTRAINT_LIKE, "r[0-9]", 0, {}, {}, true, true },
                { "rack", CONSTRAINT_LIKE, "r", 0, {}, {}, true, false },
                { "rack", CONSTRAINT_LIKE, "1", 0, {}, {}, true, false },
                { "hostname", CONSTRAINT_LIKE, "h.*", 0, {}, {}, true, true },
                { "rack", CONSTRAINT_LIKE, ".*", 0, {}, {}, false, false },
                { "rack", CONSTRAINT_UNLIKE, "r1", 0, {}, {}, true, false },
                { "rack", CONSTRAINT_UNLIKE, "r2|r3", 0, {}, {}, true, true },
                { "rack", CONSTRAINT_UNLIKE, "r", 0, {}, {}, true, true },
                { "rack", CONSTRAINT_UNLIKE, "r1", 0, {}, {}, false, true },
                /* MAX_PER */
                { "rack", CONSTRAINT_MAX_PER, NULL, 2, { "r1" }, {}, true, true },
                { "rack", CONSTRAINT_MAX_PER, NULL, 2, { "r1", "r1" }, {}, true, false },
                { "rack", CONSTRAINT_MAX_PER, NULL, 2, { "r2", "r2" }, {}, true, true },
                { "hostname", CONSTRAINT_MAX_PER, NULL, 1, {}, { "h1" }, true, false },
                { "rack", CONSTRAINT_MAX_PER, NULL, 2, {}, {}, false, false },
                /* IS */
                { "rack", CONSTRAINT_IS, "r1", 0, {}, {}, true, true },
                { "rack", CONSTRAINT_IS, "r2", 0, {}, {}, true, false },
                { "rack", CONSTRAINT_IS, "R1", 0, {}, {}, true, false },
                { "hostname", CONSTRAINT_IS, "h1", 0, {}, {}, true, true },
                { "rack", CONSTRAINT_IS, "r1", 0, {}, {}, false, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const ConstraintCase *t = &cases[i];
                Mesos__V1__Offer *o = offer_std("h1", 4, 1024, 0);
                PlacementAttribute attrs[3];
                PlacementInstance inst[3] = {};
                size_t n_inst = 0;
                Constraint k = cons(t->field, t->op, t->value, t->number);
                PlacementApp app = { .id = "/c", .constraints = &k, .n_constraints = 1, .instances = inst };
                PlacementRequest q = req(0, 1, 64);
                PlacementResult *r;
                char expect[128];

                offer_attribute(o, text_attr("zone", "z1"));
                if (t->offer_has_rack)
                        offer_attribute(o, text_attr("rack", "r1"));
                for (size_t j = 0; j < 3; j++) {
                        if (!t->instance_racks[j] && !t->instance_hosts[j])
                                continue;
                        attrs[j] = (PlacementAttribute){ .name = "rack", .value = t->instance_racks[j] };
                        inst[n_inst++] = (PlacementInstance){
                                .hostname = t->instance_hosts[j] ? t->instance_hosts[j] : "x",
                                .attributes = t->instance_racks[j] ? &attrs[j] : NULL,
                                .n_attributes = t->instance_racks[j] ? 1 : 0,
                        };
                }
                app.n_instances = n_inst;

                r = run(&o, 1, &app, 1, &q, 1);
                if (r->requests[0].placed != t->placed)
                        fail_msg("case %zu (%s:%s:%s): placed=%d", i, t->field,
                                 constraint_op_to_string(t->op), t->value ? t->value : "",
                                 r->requests[0].placed);
                if (!t->placed) {
                        assert_int_equal(r->requests[0].rejects[PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT], 1);
                        snprintf(expect, sizeof(expect), "host h1: constraint %s:%s", t->field,
                                 constraint_op_to_string(t->op));
                        assert_reason(&r->requests[0], expect);
                        if (!t->offer_has_rack)
                                assert_reason(&r->requests[0], "(no attribute rack)");
                }
                placement_result_free(r);
                cons_done(&k, 1);
                offers_free(&o, 1);
        }
}

static void test_constraint_printed_values(void **state)
{
        static const char *const items[] = { "ssd", "gpu" };
        static const uint64_t g[][2] = { { 10, 20 }, { 1, 2 } };
        Mesos__V1__Offer *o = offer_std("h1", 4, 1024, 0);
        Constraint ks[] = {
                cons("size", CONSTRAINT_IS, "2.5", 0),
                cons("features", CONSTRAINT_IS, "{gpu,ssd}", 0),
                cons("slots", CONSTRAINT_IS, "[1-2,10-20]", 0),
                cons("size", CONSTRAINT_LIKE, "2\\.[0-9]+", 0),
        };
        PlacementApp app = { .constraints = ks, .n_constraints = ELEMENTSOF(ks) };
        PlacementRequest q = req(0, 1, 64);
        PlacementResult *r;

        offer_attribute(o, scalar_attr("size", 2.5));
        offer_attribute(o, set_attr("features", 2, items));
        offer_attribute(o, ranges_attr("slots", 2, g));
        r = run(&o, 1, &app, 1, &q, 1);
        assert_true(r->requests[0].placed);
        placement_result_free(r);
        cons_done(ks, ELEMENTSOF(ks));
        offers_free(&o, 1);
}

static void test_attribute_format(void **state)
{
        static const char *const items[] = { "b", "a", "c" };
        static const uint64_t g[][2] = { { 31000, 32000 }, { 1, 5 } };
        char buf[PLACEMENT_VALUE_MAX + 1], small[4];
        const struct {
                double v;
                const char *want;
        } scalars[] = {
                { 2, "2" },       { 0.5, "0.5" },   { 1.23456, "1.235" },
                { -2.5, "-2.5" }, { -0.0001, "0" }, { 1e6, "1000000" },
        };
        Mesos__V1__Attribute *a;
        char *big;

        a = text_attr("rack", "r1");
        assert_int_equal(placement_attribute_format(a, buf, sizeof(buf)), 2);
        assert_string_equal(buf, "r1");
        assert_int_equal(placement_attribute_format(a, small, 2), -ENAMETOOLONG);
        free(a->text->value);
        a->text->value = NULL;
        assert_int_equal(placement_attribute_format(a, buf, sizeof(buf)), -EINVAL);
        mesos__v1__attribute__free_unpacked(a, NULL);

        for (size_t i = 0; i < ELEMENTSOF(scalars); i++) {
                a = scalar_attr("n", scalars[i].v);
                assert_int_equal(placement_attribute_format(a, buf, sizeof(buf)), strlen(scalars[i].want));
                assert_string_equal(buf, scalars[i].want);
                mesos__v1__attribute__free_unpacked(a, NULL);
        }
        a = scalar_attr("n", NAN);
        assert_int_equal(placement_attribute_format(a, buf, sizeof(buf)), -EINVAL);
        /* the largest doubles still print whole (309 digits fit) */
        a->scalar->value = 1e300;
        assert_int_equal(placement_attribute_format(a, buf, sizeof(buf)), 301);
        assert_true(buf[0] == '1' && strchr(buf, '.') == NULL);
        a->scalar->value = 12.5;
        assert_int_equal(placement_attribute_format(a, small, sizeof(small)), -ENAMETOOLONG);
        mesos__v1__attribute__free_unpacked(a, NULL);

        a = set_attr("s", 3, items);
        assert_int_equal(placement_attribute_format(a, buf, sizeof(buf)), 7);
        assert_string_equal(buf, "{a,b,c}");
        mesos__v1__attribute__free_unpacked(a, NULL);
        a = set_attr("s", 0, NULL);
        assert_int_equal(placement_attribute_format(a, buf, sizeof(buf)), 2);
        assert_string_equal(buf, "{}");
        mesos__v1__attribute__free_unpacked(a, NULL);

        a = ranges_attr("r", 2, g);
        assert_true(placement_attribute_format(a, buf, sizeof(buf)) > 0);
        assert_string_equal(buf, "[1-5,31000-32000]");
        mesos__v1__attribute__free_unpacked(a, NULL);

        /* longer than PLACEMENT_VALUE_MAX, however large the buffer */
        big = xcalloc(PLACEMENT_VALUE_MAX + 2, 1);
        memset(big, 'x', PLACEMENT_VALUE_MAX + 1);
        a = text_attr("t", big);
        {
                char *huge = xcalloc(4 * PLACEMENT_VALUE_MAX, 1);
                assert_int_equal(placement_attribute_format(a, huge, 4 * PLACEMENT_VALUE_MAX),
                                 -ENAMETOOLONG);
                free(huge);
        }
        mesos__v1__attribute__free_unpacked(a, NULL);
        free(big);

        assert_int_equal(placement_attribute_format(NULL, buf, sizeof(buf)), -EINVAL);
}

static void count_racks(const PlacementResult *r, Mesos__V1__Offer *const *offers, size_t per_rack[3])
{
        for (size_t i = 0; i < r->n_launches; i++) {
                const Mesos__V1__Offer *o = offers[r->launches[i].offer];
                const char *rack = o->attributes[0]->text->value;
                assert_true(rack[0] == 'r' && rack[1] >= '1' && rack[1] <= '3');
                per_rack[rack[1] - '1']++;
        }
}

static void test_group_by_three_racks(void **state)
{
        Mesos__V1__Offer *offers[] = {
                offer_rack("a1", "r1", 10), offer_rack("a2", "r1", 10), offer_rack("b1", "r2", 10),
                offer_rack("b2", "r2", 10), offer_rack("c1", "r3", 10), offer_rack("c2", "r3", 10),
        };
        Constraint k = cons("rack", CONSTRAINT_GROUP_BY, NULL, 0);
        PlacementApp app = { .id = "/g", .constraints = &k, .n_constraints = 1 };
        PlacementRequest q[9];
        PlacementResult *r;
        size_t per_rack[3] = {}, first[3] = {}, per_host[6] = {};

        for (size_t i = 0; i < 9; i++)
                q[i] = req(0, 1, 64);
        r = run(offers, ELEMENTSOF(offers), &app, 1, q, 9);
        assert_int_equal(r->n_launches, 9);
        count_racks(r, offers, per_rack);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(per_rack[i], 3);
        /* balanced at every step, not only at the end */
        {
                PlacementResult partial = *r;
                partial.n_launches = 3;
                count_racks(&partial, offers, first);
                for (size_t i = 0; i < 3; i++)
                        assert_int_equal(first[i], 1);
        }
        /* and spread over the hosts within each rack */
        for (size_t i = 0; i < 9; i++)
                per_host[r->launches[i].offer]++;
        for (size_t i = 0; i < 6; i++)
                assert_true(per_host[i] == 1 || per_host[i] == 2);
        placement_result_free(r);
        cons_done(&k, 1);
        offers_free(offers, ELEMENTSOF(offers));
}

static void test_group_by_existing_imbalance(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_rack("a1", "r1", 10), offer_rack("b1", "r2", 10),
                                       offer_rack("c1", "r3", 10) };
        const PlacementAttribute r1 = { "rack", "r1" };
        const PlacementInstance inst[] = { { "a1", &r1, 1 }, { "a1", &r1, 1 } };
        Constraint k = cons("rack", CONSTRAINT_GROUP_BY, NULL, 0);
        PlacementApp app = { .constraints = &k, .n_constraints = 1, .instances = inst, .n_instances = 2 };
        PlacementRequest q[5];
        PlacementResult *r;
        size_t per_rack[3] = {};

        for (size_t i = 0; i < 5; i++)
                q[i] = req(0, 1, 64);
        r = run(offers, 3, &app, 1, q, 5);
        /* 2 + 0 + 0 existing, 4 new: 2/2/2 reached, then r1 again is fine */
        assert_int_equal(r->n_launches, 5);
        count_racks(r, offers, per_rack);
        assert_int_equal(per_rack[0], 1);
        assert_int_equal(per_rack[1], 2);
        assert_int_equal(per_rack[2], 2);
        assert_string_equal(launch_host(r, offers, 4), "a1");
        placement_result_free(r);
        cons_done(&k, 1);
        offers_free(offers, 3);
}

static void test_group_by_expected_groups(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_rack("a1", "r1", 10), offer_rack("b1", "r2", 10) };
        Constraint k = cons("rack", CONSTRAINT_GROUP_BY, NULL, 3);
        PlacementApp app = { .constraints = &k, .n_constraints = 1 };
        PlacementRequest q[4];
        PlacementResult *r;

        for (size_t i = 0; i < 4; i++)
                q[i] = req(0, 1, 64);
        /* a third rack is expected but never offered: each seen rack gets one */
        r = run(offers, 2, &app, 1, q, 4);
        assert_int_equal(r->n_launches, 2);
        assert_false(r->requests[2].placed);
        assert_int_equal(r->requests[2].rejects[PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT], 2);
        assert_reason(&r->requests[2], "constraint rack:GROUP_BY:3 not satisfied");
        placement_result_free(r);
        cons_done(&k, 1);
        offers_free(offers, 2);
}

static void test_group_by_ignores_unfit_offers(void **state)
{
        /* r3's offer is too small: it must not hold the lowest count at 0 */
        Mesos__V1__Offer *offers[] = { offer_rack("a1", "r1", 10), offer_rack("b1", "r2", 10),
                                       offer_rack("c1", "r3", 0.5) };
        Constraint k = cons("rack", CONSTRAINT_GROUP_BY, NULL, 0);
        PlacementApp app = { .constraints = &k, .n_constraints = 1 };
        PlacementRequest q[4];
        PlacementResult *r;

        for (size_t i = 0; i < 4; i++)
                q[i] = req(0, 1, 64);
        r = run(offers, 3, &app, 1, q, 4);
        assert_int_equal(r->n_launches, 4);
        placement_result_free(r);
        cons_done(&k, 1);
        offers_free(offers, 3);
}

static void test_unique_five_offers_three_hosts(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_std("a", 4, 1024, 0), offer_std("a", 4, 1024, 0),
                                       offer_std("b", 4, 1024, 0), offer_std("b", 4, 1024, 0),
                                       offer_std("c", 4, 1024, 0) };
        Constraint k = cons("hostname", CONSTRAINT_UNIQUE, NULL, 0);
        PlacementApp app = { .id = "/u", .constraints = &k, .n_constraints = 1 };
        PlacementRequest q[5];
        PlacementResult *r;
        bool seen[3] = {};

        for (size_t i = 0; i < 5; i++)
                q[i] = req(0, 1, 64);
        r = run(offers, 5, &app, 1, q, 5);
        assert_int_equal(r->n_launches, 3);
        for (size_t i = 0; i < 3; i++) {
                const char *h = launch_host(r, offers, i);
                assert_false(seen[h[0] - 'a']);
                seen[h[0] - 'a'] = true;
        }
        for (size_t i = 3; i < 5; i++) {
                assert_false(r->requests[i].placed);
                assert_int_equal(r->requests[i].processed, 5);
                assert_int_equal(r->requests[i].rejects[PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT], 5);
                assert_int_equal(r->requests[i].n_reasons, PLACEMENT_REASONS_MAX);
                assert_reason(&r->requests[i], "constraint hostname:UNIQUE not satisfied");
        }
        placement_result_free(r);
        cons_done(&k, 1);
        offers_free(offers, 5);
}

static void test_max_per_and_cluster_in_one_round(void **state)
{
        Mesos__V1__Offer *offers[] = { offer_rack("a1", "r1", 10), offer_rack("b1", "r2", 1),
                                       offer_rack("b2", "r2", 10) };
        Constraint max_per = cons("rack", CONSTRAINT_MAX_PER, NULL, 2);
        Constraint cluster = cons("rack", CONSTRAINT_CLUSTER, NULL, 0);
        PlacementApp apps[2] = {
                { .id = "/m", .constraints = &max_per, .n_constraints = 1 },
                { .id = "/c", .constraints = &cluster, .n_constraints = 1 },
        };
        PlacementRequest q[8];
        PlacementResult *r;
        size_t per_rack[3] = {};

        for (size_t i = 0; i < 5; i++)
                q[i] = req(0, 0.1, 1);
        for (size_t i = 5; i < 8; i++)
                q[i] = req(1, 1, 1);
        r = run(offers, 3, apps, 2, q, 8);
        for (size_t i = 0; i < 4; i++)
                assert_true(r->requests[i].placed);
        assert_false(r->requests[4].placed);
        assert_reason(&r->requests[4], "constraint rack:MAX_PER:2 not satisfied");
        {
                PlacementResult first = *r;
                first.n_launches = 4;
                count_racks(&first, offers, per_rack);
                assert_int_equal(per_rack[0], 2);
                assert_int_equal(per_rack[1], 2);
        }
        /* CLUSTER without a value: the first placement picks the rack for the rest */
        {
                const char *h5 = launch_host(r, offers, 5);
                const char *rack =
                        offers[r->launches[r->requests[5].launch].offer]->attributes[0]->text->value;
                for (size_t i = 6; i < 8; i++)
                        assert_string_equal(
                                offers[r->launches[r->requests[i].launch].offer]->attributes[0]->text->value,
                                rack);
                assert_non_null(h5);
        }
        placement_result_free(r);
        cons_done(&max_per, 1);
        cons_done(&cluster, 1);
        offers_free(offers, 3);
}

/* ---- reasons and bad input ---- */

static void test_reasons_bounded(void **state)
{
        Mesos__V1__Offer *offers[10];
        PlacementRequest q = req(0, 2, 1);
        PlacementResult *r;

        for (size_t i = 0; i < 10; i++) {
                char host[8];
                snprintf(host, sizeof(host), "h%zu", i);
                offers[i] = offer_std(host, 1, 1024, 0);
        }
        r = run(offers, 10, &plain_app, 1, &q, 1);
        assert_int_equal(r->requests[0].processed, 10);
        assert_int_equal(r->requests[0].rejects[PLACEMENT_REJECT_INSUFFICIENT_CPUS], 10);
        assert_int_equal(r->requests[0].n_reasons, PLACEMENT_REASONS_MAX);
        /* the last ones, oldest first */
        for (size_t i = 0; i < PLACEMENT_REASONS_MAX; i++) {
                char want[64];
                snprintf(want, sizeof(want), "host h%zu: insufficient cpus (need 2, free 1)",
                         10 - PLACEMENT_REASONS_MAX + i);
                assert_string_equal(r->requests[0].reasons[i], want);
        }
        for (size_t i = 0; i < 10; i++)
                assert_false(r->offers[i].used);
        placement_result_free(r);
        offers_free(offers, 10);
}

typedef struct HostileCase {
        Mesos__V1__Offer *offer;
        const char *error;
} HostileCase;

static void test_hostile_offers(void **state)
{
        char long_host[PLACEMENT_HOSTNAME_MAX + 2], *long_value;
        uint64_t(*many_ranges)[2] = xcalloc(PLACEMENT_RANGES_MAX + 1, sizeof(*many_ranges));
        HostileCase cases[17];
        size_t n = 0;
        Mesos__V1__Offer *o, *offers[ELEMENTSOF(cases) + 1];
        Mesos__V1__Resource *nulled;
        static const uint64_t overlapping[][2] = { { 31000, 31010 }, { 31005, 31020 } };
        static const uint64_t zero_first[][2] = { { 0, 0 }, { 0, 10 } };
        static const uint32_t ten[10] = {};
        PlacementRequest q = req(0, 1.5, 64);
        PlacementResult *r;

        memset(long_host, 'h', sizeof(long_host) - 1);
        long_host[sizeof(long_host) - 1] = 0;
        long_value = xcalloc(PLACEMENT_VALUE_MAX + 2, 1);
        memset(long_value, 'v', PLACEMENT_VALUE_MAX + 1);
        for (size_t i = 0; i <= PLACEMENT_RANGES_MAX; i++) {
                many_ranges[i][0] = 2 * i + 1;
                many_ranges[i][1] = 2 * i + 1;
        }

        cases[n++] = (HostileCase){ NULL, "offer missing" };
        o = offer_std("a", 8, 1024, 0);
        free(o->agent_id->value);
        o->agent_id->value = NULL;
        cases[n++] = (HostileCase){ o, "no agent id" };
        cases[n++] = (HostileCase){ offer_std(NULL, 8, 1024, 0), "no hostname" };
        cases[n++] = (HostileCase){ offer_std(long_host, 8, 1024, 0), "hostname longer than 255 bytes" };
        cases[n++] = (HostileCase){ offer_std("nan", NAN, 1024, 0), "resource cpus: invalid amount nan" };
        cases[n++] = (HostileCase){ offer_std("neg", 8, -1, 0), "resource mem: invalid amount -1" };
        cases[n++] =
                (HostileCase){ offer_std("inf", 8, 1024, INFINITY), "resource disk: invalid amount inf" };
        o = offer_std("type", 8, 1024, 0);
        o->resources[0]->type = MESOS__V1__VALUE__TYPE__RANGES;
        cases[n++] = (HostileCase){ o, "resource cpus: not a SCALAR value" };
        cases[n++] = (HostileCase){ offer_add(offer_std("rev", 8, 1024, 0), port_range(5, 3)),
                                    "resource ports: range 5-3 ends before it begins" };
        cases[n++] = (HostileCase){ offer_add(offer_std("big", 8, 1024, 0), port_range(1, 70000)),
                                    "resource ports: range 1-70000 beyond port 65535" };
        cases[n++] = (HostileCase){ offer_add(offer_std("many", 8, 1024, 0),
                                              ports_new(PLACEMENT_RANGES_MAX + 1, many_ranges)),
                                    "resource ports: more than 1024 ranges" };
        cases[n++] = (HostileCase){ offer_add(offer_std("ovl", 8, 1024, 0), ports_new(2, overlapping)),
                                    "resource ports: ranges overlap at port 31005" };
        o = offer_add(offer_add(offer_std("ovl2", 8, 1024, 0), port_range(1, 65535)),
                      port_range(31000, 32000));
        cases[n++] = (HostileCase){ o, "resource ports: ranges overlap at port 31000" };
        o = offer_std("res", 8, 1024, 0);
        for (size_t i = 0; i < PLACEMENT_OFFER_RESOURCES_MAX; i++)
                offer_add(o, scalar_new("gpus", 1));
        cases[n++] = (HostileCase){ o, "1026 resources, more than 1024" };
        cases[n++] =
                (HostileCase){ offer_attribute(offer_std("attr", 8, 1024, 0), text_attr("rack", long_value)),
                               "attribute rack: value longer than 1024 bytes" };
        o = offer_attribute(offer_std("attr2", 8, 1024, 0), text_attr("rack", "r1"));
        o->attributes[0]->type = MESOS__V1__VALUE__TYPE__SET;
        cases[n++] = (HostileCase){ o, "attribute rack: malformed value" };
        o = offer_std("nullres", 8, 1024, 0);
        nulled = o->resources[1];
        o->resources[1] = NULL;
        cases[n++] = (HostileCase){ o, "resource 1 malformed" };
        assert_int_equal(n, ELEMENTSOF(cases));

        for (size_t i = 0; i < n; i++)
                offers[i] = cases[i].offer;
        /* the one good offer: two identical cpus entries (two pools), port 0 never given */
        o = offer_add(offer_std("good", 1, 1024, 0), scalar_new("cpus", 1));
        offers[n] = offer_add(o, ports_new(2, zero_first));

        r = run(offers, n + 1, &plain_app, 1, &q, 1);
        for (size_t i = 0; i < n; i++) {
                assert_false(r->offers[i].used);
                assert_non_null(r->offers[i].error);
                if (strcmp(r->offers[i].error, cases[i].error) != 0)
                        fail_msg("offer %zu: error \"%s\", expected \"%s\"", i, r->offers[i].error,
                                 cases[i].error);
        }
        assert_true(r->offers[n].used);
        assert_null(r->offers[n].error);
        assert_int_equal(r->launches[0].n_task_resources, 3);
        assert_near(task_amount(&r->launches[0], "cpus"), 1.5);
        placement_result_free(r);

        /* a request that fits nowhere hears about the unusable offers */
        q.cpus = 3;
        r = run(offers, n + 1, &plain_app, 1, &q, 1);
        assert_false(r->requests[0].placed);
        assert_int_equal(r->requests[0].rejects[PLACEMENT_REJECT_INVALID_OFFER], n);
        assert_int_equal(r->requests[0].rejects[PLACEMENT_REJECT_INSUFFICIENT_CPUS], 1);
        assert_int_equal(r->requests[0].n_reasons, PLACEMENT_REASONS_MAX);
        assert_string_equal(r->requests[0].reasons[PLACEMENT_REASONS_MAX - 2],
                            "offer #16: offer not usable: resource 1 malformed");
        assert_string_equal(r->requests[0].reasons[PLACEMENT_REASONS_MAX - 1],
                            "host good: insufficient cpus (need 3, free 2)");
        placement_result_free(r);

        /* ports 0-10 give 1..10 */
        q.cpus = 1;
        q.ports = ten;
        q.n_ports = 10;
        r = run(offers + n, 1, &plain_app, 1, &q, 1);
        assert_true(r->requests[0].placed);
        for (size_t i = 0; i < 10; i++)
                assert_int_equal(r->launches[0].host_ports[i], i + 1);
        placement_result_free(r);

        offers[16]->resources[1] = nulled;
        offers_free(offers, n + 1);
        free(long_value);
        free(many_ranges);
}

static void test_bad_requests(void **state)
{
        static const uint32_t high[] = { 70000 }, twice[] = { 8080, 0, 8080 },
                              zeros[PLACEMENT_PORTS_MAX + 1] = {};
        Mesos__V1__Offer *offers[] = { offer_add(offer_std("a", 8, 1024, 0), port_range(1, 65535)),
                                       offer_std("b", 8, 1024, 0) };
        Constraint no_regex = { .field = (char *)"rack", .op = CONSTRAINT_LIKE, .value = (char *)"r1" };
        Constraint no_value = { .field = (char *)"rack", .op = CONSTRAINT_IS };
        Constraint bad_op = { .field = (char *)"rack", .op = _CONSTRAINT_OP_MAX };
        const PlacementApp apps[] = {
                { .id = "/ok" },
                { .id = "/like", .constraints = &no_regex, .n_constraints = 1 },
                { .id = "/is", .constraints = &no_value, .n_constraints = 1 },
                { .id = "/op", .constraints = &bad_op, .n_constraints = 1 },
        };
        PlacementRequest q[] = {
                req(7, 1, 1), req(0, NAN, 1), req(0, 1, -1), req(0, 1, 1), req(0, 1, 1), req(0, 1, 1),
                req(1, 1, 1), req(2, 1, 1),   req(3, 1, 1),  req(0, 1, 1), req(0, 1, 1),
        };
        const char *const want[] = {
                "request: app 7 out of range",
                "request: invalid cpus amount nan",
                "request: invalid mem amount -1",
                "request: port 70000 beyond 65535",
                "request: port 8080 requested twice",
                "request: 65 ports, more than 64",
                "/like: constraint 0: no compiled regex",
                "/is: constraint 0: no value",
                "/op: constraint 0: unknown operator",
                "request: invalid executor mem amount inf",
        };
        PlacementResult *r;

        q[3].ports = high;
        q[3].n_ports = 1;
        q[4].ports = twice;
        q[4].n_ports = 3;
        q[5].ports = zeros;
        q[5].n_ports = PLACEMENT_PORTS_MAX + 1;
        q[9].executor_mem = INFINITY;
        r = run(offers, 2, apps, ELEMENTSOF(apps), q, ELEMENTSOF(q));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                assert_false(r->requests[i].placed);
                assert_int_equal(r->requests[i].rejects[PLACEMENT_REJECT_INVALID_REQUEST], 2);
                assert_int_equal(r->requests[i].n_reasons, 1);
                assert_string_equal(r->requests[i].reasons[0], want[i]);
        }
        /* the valid request after all of them is placed */
        assert_true(r->requests[10].placed);
        assert_int_equal(r->n_launches, 1);
        placement_result_free(r);
        offers_free(offers, 2);
}

static void test_api_errors(void **state)
{
        PlacementInput in = {};
        PlacementResult *r = NULL;

        assert_int_equal(placement_compute(NULL, &r), -EINVAL);
        assert_int_equal(placement_compute(&in, NULL), -EINVAL);
        in.n_offers = 1;
        assert_int_equal(placement_compute(&in, &r), -EINVAL);
        in.n_offers = 0;
        in.n_requests = 1;
        assert_int_equal(placement_compute(&in, &r), -EINVAL);
        in.n_requests = 0;
        in.offers = (const Mesos__V1__Offer *const *)&in; /* never read: the count is checked first */
        in.n_offers = PLACEMENT_OFFERS_MAX + 1;
        assert_int_equal(placement_compute(&in, &r), -E2BIG);
        assert_null(r);

        in = (PlacementInput){};
        assert_int_equal(placement_compute(&in, &r), 0);
        assert_int_equal(r->n_launches, 0);
        assert_null(placement_result_free(r));
        assert_null(placement_result_free(NULL));

        assert_string_equal(placement_reject_to_string(PLACEMENT_REJECT_INSUFFICIENT_CPUS),
                            "InsufficientCpus");
        assert_string_equal(placement_reject_to_string(PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT),
                            "UnfulfilledConstraint");
        assert_null(placement_reject_to_string(_PLACEMENT_REJECT_MAX));
        assert_null(placement_reject_to_string(_PLACEMENT_REJECT_INVALID));
}

/* Many apps and offers at once: whatever is chosen must stay within what each
 * offer holds, and no host port may be handed out twice on one offer. */
static void test_round_invariants(void **state)
{
#define N_OFFERS 40
#define N_APPS   8
#define N_REQS   600
        static Mesos__V1__Offer *offers[N_OFFERS];
        static PlacementRequest q[N_REQS];
        static const uint32_t ports[] = { 0, 0 };
        static uint8_t used_ports[N_OFFERS][100];
        Constraint ks[N_APPS];
        PlacementApp apps[N_APPS];
        double cpus[N_OFFERS] = {}, mem[N_OFFERS] = {};
        PlacementResult *r;
        size_t placed = 0;

        for (size_t i = 0; i < N_OFFERS; i++) {
                char host[16], rack[8];
                snprintf(host, sizeof(host), "h%zu", i / 2); /* two offers per host */
                snprintf(rack, sizeof(rack), "r%zu", i % 3 + 1);
                offers[i] = offer_add(offer_rack(host, rack, 4 + (double)(i % 5)), port_range(31000, 31099));
        }
        for (size_t a = 0; a < N_APPS; a++) {
                static const ConstraintOp ops[] = { CONSTRAINT_UNIQUE,  CONSTRAINT_GROUP_BY,
                                                    CONSTRAINT_MAX_PER, CONSTRAINT_CLUSTER,
                                                    CONSTRAINT_LIKE,    CONSTRAINT_UNLIKE };
                ConstraintOp op = ops[a % ELEMENTSOF(ops)];
                ks[a] = cons(op == CONSTRAINT_UNIQUE ? "hostname" : "rack", op,
                             op == CONSTRAINT_LIKE     ? "r[12]"
                             : op == CONSTRAINT_UNLIKE ? "r1"
                                                       : NULL,
                             op == CONSTRAINT_MAX_PER ? 5 : 0);
                apps[a] = (PlacementApp){ .constraints = &ks[a], .n_constraints = a < 6 ? 1 : 0 };
        }
        for (size_t i = 0; i < N_REQS; i++) {
                q[i] = req(i % N_APPS, 0.25 + (double)(i % 3) * 0.25, 32);
                q[i].ports = ports;
                q[i].n_ports = i % 2 ? 2 : 0;
                q[i].executor_cpus = 0.01;
                q[i].executor_mem = 16;
        }
        r = run(offers, N_OFFERS, apps, N_APPS, q, N_REQS);
        memset(used_ports, 0, sizeof(used_ports));
        for (size_t i = 0; i < r->n_launches; i++) {
                const PlacementLaunch *l = &r->launches[i];
                cpus[l->offer] += task_amount(l, "cpus") + executor_amount(l, "cpus");
                mem[l->offer] += task_amount(l, "mem") + executor_amount(l, "mem");
                assert_int_equal(l->n_host_ports, q[l->request].n_ports);
                for (size_t j = 0; j < l->n_host_ports; j++) {
                        assert_true(l->host_ports[j] >= 31000 && l->host_ports[j] <= 31099);
                        assert_int_equal(used_ports[l->offer][l->host_ports[j] - 31000], 0);
                        used_ports[l->offer][l->host_ports[j] - 31000] = 1;
                }
                assert_true(r->offers[l->offer].used);
        }
        for (size_t i = 0; i < N_OFFERS; i++) {
                assert_true(cpus[i] <= 4 + (double)(i % 5) + 1e-9);
                assert_true(mem[i] <= 64 * 1024 + 1e-9);
        }
        for (size_t i = 0; i < N_REQS; i++)
                placed += r->requests[i].placed;
        assert_int_equal(placed, r->n_launches);
        /* UNIQUE hostname (app 0): at most one per host, 20 hosts */
        {
                bool host_used[N_OFFERS / 2] = {};
                size_t n = 0;
                for (size_t i = 0; i < r->n_launches; i++) {
                        const PlacementLaunch *l = &r->launches[i];
                        if (q[l->request].app != 0)
                                continue;
                        assert_false(host_used[l->offer / 2]);
                        host_used[l->offer / 2] = true;
                        n++;
                }
                assert_int_equal(n, N_OFFERS / 2);
        }
        placement_result_free(r);
        cons_done(ks, N_APPS);
        offers_free(offers, N_OFFERS);
#undef N_OFFERS
#undef N_APPS
#undef N_REQS
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fit_basic),
                cmocka_unit_test(test_insufficient_each),
                cmocka_unit_test(test_executor_counted),
                cmocka_unit_test(test_fixed_point),
                cmocka_unit_test(test_reserved_first_and_copied),
                cmocka_unit_test(test_unknown_field_copied),
                cmocka_unit_test(test_special_resources_left_alone),
                cmocka_unit_test(test_fixed_ports),
                cmocka_unit_test(test_dynamic_ports_across_ranges),
                cmocka_unit_test(test_ports_wide_ranges),
                cmocka_unit_test(test_many_on_one_offer),
                cmocka_unit_test(test_two_apps_share_offers),
                cmocka_unit_test(test_spread_default),
                cmocka_unit_test(test_spread_tiebreak),
                cmocka_unit_test(test_constraint_operators),
                cmocka_unit_test(test_constraint_printed_values),
                cmocka_unit_test(test_attribute_format),
                cmocka_unit_test(test_group_by_three_racks),
                cmocka_unit_test(test_group_by_existing_imbalance),
                cmocka_unit_test(test_group_by_expected_groups),
                cmocka_unit_test(test_group_by_ignores_unfit_offers),
                cmocka_unit_test(test_unique_five_offers_three_hosts),
                cmocka_unit_test(test_max_per_and_cluster_in_one_round),
                cmocka_unit_test(test_reasons_bounded),
                cmocka_unit_test(test_hostile_offers),
                cmocka_unit_test(test_bad_requests),
                cmocka_unit_test(test_api_errors),
                cmocka_unit_test(test_round_invariants),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

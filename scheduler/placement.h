/* SPDX-License-Identifier: Apache-2.0 */
/* Placement: given the offers of one round and the instances waiting to be
 * launched, decide which instance goes on which offer with which resources and
 * host ports. Pure logic: no I/O, no event loop; the caller sends the ACCEPTs and
 * DECLINEs. The rules (pools, constraints, spreading) are in docs/placement.md.
 *
 * Semantics in brief:
 * - Scalars are compared in Mesos' fixed point (milli-units). Per offer, each
 *   cpus/mem/disk/ports Resource is a separate pool; pools reserved for the
 *   framework (reservations, reservation or a role other than "*") are used
 *   before unreserved ones. Resources carrying DiskInfo, RevocableInfo, SharedInfo
 *   or a provider id are left alone.
 * - Task and executor resources are copies of the offered Resource messages
 *   (role, reservations, allocation_info and unknown fields kept) with only the
 *   amount or the ranges changed.
 * - Constraints follow Marathon: field "hostname" (or "@hostname") or an attribute
 *   name, compared by the attribute's printed value (placement_attribute_format).
 *   An offer lacking the attribute matches only UNLIKE.
 *   UNIQUE: no instance has the value. CLUSTER v: the value is v. CLUSTER: the value
 *   held by the most instances (any when there are none). GROUP_BY [n]: the value's
 *   count is the lowest among the known values (those of instances, and those of
 *   offers that could take the instance), counting n values when n are expected.
 *   MAX_PER n: fewer than n instances have the value. LIKE / UNLIKE: the compiled,
 *   anchored regex matches / does not match. IS v: the value is v.
 * - Instances placed earlier in the same call count like existing ones.
 * - Among matching offers: fewest instances of the app on that host, then most
 *   free cpus, then most free mem, then the earliest offer. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "constraint.h"
#include "mesos.h"

/* Limits on one call. Too many offers, requests or apps fails the call
 * (-E2BIG): the caller batches. The other limits make the offending offer, app
 * or request unusable, with a reason. */
#define PLACEMENT_OFFERS_MAX           16384u
#define PLACEMENT_REQUESTS_MAX         100000u
#define PLACEMENT_APPS_MAX             PLACEMENT_REQUESTS_MAX
#define PLACEMENT_PORTS_MAX            64u      /* port definitions per instance */
#define PLACEMENT_CONSTRAINTS_MAX      64u      /* constraints per app */
#define PLACEMENT_INSTANCES_MAX        1000000u /* existing instances per app */
#define PLACEMENT_OFFER_RESOURCES_MAX  1024u    /* Resource messages in one offer */
#define PLACEMENT_OFFER_ATTRIBUTES_MAX 256u     /* attributes in one offer */
#define PLACEMENT_RANGES_MAX           1024u    /* ranges in one ports resource */
#define PLACEMENT_HOSTNAME_MAX         255u     /* DNS limit */
#define PLACEMENT_VALUE_MAX            1024u    /* printed attribute value, bytes without the NUL */
/* Largest scalar accepted in an offer or a request (1e9 cpus or MB): far above any
 * machine, and small enough that milli-units never overflow when summed. */
#define PLACEMENT_SCALAR_MAX 1e9
/* The last reasons kept per request (why offers did not fit), and their length. */
#define PLACEMENT_REASONS_MAX 4u
#define PLACEMENT_REASON_MAX  256u

/* An existing instance of an app (running or staged), as far as constraints and
 * spreading care: where it runs. Values are printed as by placement_attribute_format(). */
typedef struct PlacementAttribute {
        const char *name;
        const char *value;
} PlacementAttribute;

typedef struct PlacementInstance {
        const char *hostname; /* NULL when not known yet: counted, but on no host */
        const PlacementAttribute *attributes;
        size_t n_attributes;
} PlacementInstance;

/* One app (one version): its constraints and where its instances already run.
 * Requests point at it by index, so several instances of one app placed in the
 * same call see each other. Constraints are evaluated, never parsed, here: LIKE
 * and UNLIKE need their compiled regex. */
typedef struct PlacementApp {
        const char *id; /* for messages only; may be NULL */
        const Constraint *constraints;
        size_t n_constraints;
        const PlacementInstance *instances;
        size_t n_instances;
} PlacementApp;

/* One instance waiting to be placed. Amounts are Mesos units (cpus, MB). */
typedef struct PlacementRequest {
        size_t app; /* index into PlacementInput.apps */
        double cpus, mem, disk;
        /* One host port per port definition: non-zero = exactly that port (the
         * caller resolves requirePorts), 0 = any free port of the offer. */
        const uint32_t *ports;
        size_t n_ports;
        /* The executor's own resources, needed on top of the task's. */
        double executor_cpus, executor_mem, executor_disk;
} PlacementRequest;

typedef struct PlacementInput {
        const Mesos__V1__Offer *const *offers;
        size_t n_offers;
        const PlacementApp *apps;
        size_t n_apps;
        /* In priority order: earlier requests get the first pick. */
        const PlacementRequest *requests;
        size_t n_requests;
} PlacementInput;

/* Why an offer was not taken for a request. The names are Marathon's
 * (/v2/queue processedOffersSummary) where Marathon has one. */
typedef enum PlacementReject {
        PLACEMENT_REJECT_INVALID_OFFER,
        PLACEMENT_REJECT_INVALID_REQUEST,
        PLACEMENT_REJECT_INSUFFICIENT_CPUS,
        PLACEMENT_REJECT_INSUFFICIENT_MEMORY,
        PLACEMENT_REJECT_INSUFFICIENT_DISK,
        PLACEMENT_REJECT_INSUFFICIENT_PORTS,
        PLACEMENT_REJECT_UNFULFILLED_CONSTRAINT,
        _PLACEMENT_REJECT_MAX,
        _PLACEMENT_REJECT_INVALID = -EINVAL,
} PlacementReject;

typedef struct PlacementLaunch {
        size_t offer;   /* index into PlacementInput.offers */
        size_t request; /* index into PlacementInput.requests */
        /* Copies of offered Resources with the amounts taken: ready for
         * TaskInfo.resources and ExecutorInfo.resources. Owned by the result. */
        Mesos__V1__Resource **task_resources;
        size_t n_task_resources;
        Mesos__V1__Resource **executor_resources;
        size_t n_executor_resources;
        /* The host port of each port definition, in the request's order. */
        const uint32_t *host_ports;
        size_t n_host_ports;
} PlacementLaunch;

typedef struct PlacementOfferResult {
        bool used;         /* at least one launch: ACCEPT it; otherwise DECLINE it */
        const char *error; /* why the offer could not be read; NULL when it was fine */
} PlacementOfferResult;

typedef struct PlacementRequestResult {
        bool placed;
        size_t launch; /* index into PlacementResult.launches when placed */
        /* When not placed: offers looked at and, per reason, offers turned down. */
        uint32_t processed;
        uint32_t rejects[_PLACEMENT_REJECT_MAX];
        /* The last few reasons, oldest first, e.g. "host a1: insufficient cpus
         * (need 1.01, free 0.5)". Owned by the result. */
        const char *reasons[PLACEMENT_REASONS_MAX];
        size_t n_reasons;
} PlacementRequestResult;

typedef struct PlacementResult {
        PlacementLaunch *launches;
        size_t n_launches;
        PlacementOfferResult *offers; /* n_offers of the input */
        size_t n_offers;
        PlacementRequestResult *requests; /* n_requests of the input */
        size_t n_requests;
        Arena *arena; /* texts, port numbers, the Resources of the launches */
} PlacementResult;

/* Decides the placements of one round. Bad offers and requests are skipped with
 * a reason, never fatal. Returns 0, -EINVAL for a malformed input (NULL arrays
 * with non-zero counts), -E2BIG past PLACEMENT_OFFERS_MAX / PLACEMENT_REQUESTS_MAX /
 * PLACEMENT_APPS_MAX, or -ENOMEM. */
int placement_compute(const PlacementInput *in, PlacementResult **ret);
/* Frees the result with every Resource it holds; accepts NULL, returns NULL. */
PlacementResult *placement_result_free(PlacementResult *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(PlacementResult *, placement_result_free);

/* Prints an attribute's value as constraints see it: TEXT as is; SCALAR with at
 * most 3 decimals and no trailing zeros ("2", "0.5"); RANGES sorted by begin as
 * "[1-2,4-5]"; SET sorted as "{a,b}" (Marathon's forms). Returns the length,
 * -EINVAL for a malformed attribute, -ENAMETOOLONG when it does not fit in
 * size bytes (NUL included) or exceeds PLACEMENT_VALUE_MAX. */
int placement_attribute_format(const Mesos__V1__Attribute *a, char *buf, size_t size);

const char *placement_reject_to_string(PlacementReject r);

# eskit in C - build, run, test, bench.
#
#   make            build build/bin/eskit-*
#   make run        install what is missing, build, start the four services on SQLite
#   make test       install what is missing, build, run unit and integration tests and a
#                   short chaos soak
#   make test SANITIZE=1   the same under AddressSanitizer and UBSan
#                   (TEST_JOBS=2: integration test processes; 1 runs them in one)
#   make bench      benchmarks against PostgreSQL (not part of make test)
#   make deploy     build the image and start docker-compose.yml (docs/deploy.md)
#   make deploy-down  stop and remove that stack (its volumes stay)
#   make deploy-k8s apply deploy/k8s with kubectl (K8S_APPLY_FLAGS=--dry-run=server, say)
#   make soak       the chaos soak (tests/soak/soak.py; minutes; make test runs a short
#                   one): load with retries while services are SIGKILLed, paused and
#                   PostgreSQL restarted, then checks that nothing acknowledged was lost,
#                   duplicated or skipped, and that the consumers reached the head.
#                   Knobs: SOAK_SECONDS=600 (per back end), SOAK_BACKEND=both|sqlite|pg,
#                   SOAK_SEED=N (default: from the clock; the report prints it).
#                   make test ends with a short one: SOAK_TEST_SECONDS=15 per back end
#                   (about 45 s in all; 0 leaves it out)
#   make fuzz       libFuzzer targets of fuzz/ under ASan and UBSan, FUZZ_SECONDS
#                   each (FUZZ_TARGETS="fuzz_mpatch ..." to choose; FUZZ_RUNS=N
#                   stops each after N executions); make test runs each for
#                   FUZZ_TEST_SECONDS (fuzz-smoke)

SANITIZE ?= 0
BUILD    ?= build
CC       ?= cc
PYTHON   ?= /usr/bin/python3
SOAK_SECONDS ?= 600
SOAK_BACKEND ?= both
SOAK_SEED    ?=
SOAK_TEST_SECONDS ?= 15
TEST_JOBS ?= 2

# common/ is one folder per subsystem: its .c files and private headers, and
# its public headers in include/. Only the include/ folders are on the include
# path, so a subsystem's private headers stay its own.
COMMON_INC := $(addprefix -I,$(sort $(wildcard common/*/include)))
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
               -g -pthread -MMD -MP $(COMMON_INC) -I/usr/include/postgresql
ifeq ($(SANITIZE),1)
  OPT := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
  OPT := -O2
endif
CFLAGS  := $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(filter -fsanitize%,$(OPT))
LIBS    := -lmicrohttpd -ljansson -lpq -lcurl -lsqlite3 -luuid -lpcre2-8 -lm

SERVICES := $(patsubst services/%/main.c,%,$(wildcard services/*/main.c))
BINS     := $(SERVICES:%=$(BUILD)/bin/eskit-%)

COMMON_SRC := $(wildcard common/*/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
LIBESKIT   := $(BUILD)/lib/libeskit.a

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Objects are rebuilt when the flags change (SANITIZE=1 and back).
FLAGS_STAMP := $(BUILD)/flags.$(shell echo '$(CFLAGS) $(LDFLAGS)' | md5sum | cut -c1-12)

.PHONY: all deps run test unit integration bench soak clean lint deploy deploy-down deploy-k8s fuzz fuzz-build fuzz-smoke
all: $(BINS)

deps:
	@tools/deps.sh

$(FLAGS_STAMP):
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/flags.*
	@touch $@

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBESKIT): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

# --- services: every .c of services/NAME plus its embedded schema ---------------
define service_rules
$(1)_SRC := $$(wildcard services/$(1)/*.c)
$(1)_OBJ := $$($(1)_SRC:%.c=$(BUILD)/obj/%.o)
$(1)_SQL_PG := $$(sort $$(wildcard services/$(1)/schema/pg/*.sql))
$(1)_SQL_LITE := $$(sort $$(wildcard services/$(1)/schema/sqlite/*.sql))
ifneq ($$($(1)_SQL_PG),)
$(1)_OBJ += $(BUILD)/obj/gen/$(1)-schema.o
$(BUILD)/gen/$(1)-schema.c: $$($(1)_SQL_PG) $$($(1)_SQL_LITE) tools/embed-sql.sh
	@mkdir -p $$(dir $$@)
	{ tools/embed-sql.sh schema_pg $$($(1)_SQL_PG); \
	  tools/embed-sql.sh schema_sqlite $$($(1)_SQL_LITE) | sed 1,2d; } > $$@
$(BUILD)/obj/gen/$(1)-schema.o: $(BUILD)/gen/$(1)-schema.c $(FLAGS_STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) -c $$< -o $$@
endif
$(BUILD)/bin/eskit-$(1): $$($(1)_OBJ) $(LIBESKIT)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$($(1)_OBJ) $(LIBESKIT) $(LIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

# The service whose modules a test or fuzz target links (all but its main.c), by
# the target's name after test_ or fuzz_: es_ and event_ name the event store,
# crud_ the CRUD store, consumer_ the consumer store; other targets link none.
svc_prefixes := es_:event-store event_:event-store crud_:crud-store consumer_:consumer-store
svc_of = $(firstword $(foreach p,$(svc_prefixes),$(if $(filter $(word 1,$(subst :, ,$(p)))%,$(patsubst test_%,%,$(patsubst fuzz_%,%,$(1)))),$(word 2,$(subst :, ,$(p))))))

# --- tests ------------------------------------------------------------------------
# A test of a service (tests/unit/test_es_*.c, test_crud_*.c) links that
# service's archive, and only it has the service's folder on its include path;
# test_db, which drives the back ends' ops, alone sees common/db's private
# headers.
.SECONDEXPANSION:
unit_svc_lib = $(if $(call svc_of,$(1)),$(BUILD)/lib/libsvc-$(call svc_of,$(1)).a)
$(BUILD)/lib/libsvc-%.a: $$(filter-out $(BUILD)/obj/services/$$*/main.o,$$($$*_OBJ))
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $$(call unit_svc_lib,$$*) $(LIBESKIT) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(call svc_of,$*),-Iservices/$(call svc_of,$*)) \
	  $(if $(filter test_db,$*),-Icommon/db) -o $@ $< \
	  $(call unit_svc_lib,$*) $(LIBESKIT) $(LIBS) -lcriterion $(LDFLAGS)

unit: $(UNIT_BIN)
	@tools/with-pg.sh tools/unit.sh $(UNIT_BIN)

# The integration tests run in TEST_JOBS processes (pytest-xdist), a file's
# tests together in one of them (its module fixtures are shared): most of
# their time is spent waiting on services, databases and containers. -rP
# shows what passed tests printed (the failover, standby, deploy and
# connection tests' summaries: counts, retries, recovery times).
integration: $(BINS)
	ESKIT_BIN_DIR=$(abspath $(BUILD)/bin) ESKIT_SANITIZE=$(SANITIZE) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile -rP \
	  tests/integration

test: deps
	@tools/lint.sh
	$(MAKE) all unit
	$(MAKE) integration
	$(MAKE) fuzz-smoke
ifneq ($(SOAK_TEST_SECONDS),0)
	SOAK_SECONDS=$(SOAK_TEST_SECONDS) $(SOAK_RUN)
endif

# --- fuzzing: clang's libFuzzer, with its own objects in $(BUILD)/fuzz -------------
# A target fuzz/fuzz_NAME.c links fuzz/fuzzlib.c, libeskit and, for fuzz_event_*,
# fuzz_crud_* and fuzz_consumer_* (svc_of), the modules of that service but its
# main.c.
FUZZ_CC           ?= clang
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 4
FUZZ_RUNS         ?= 0
FUZZ_DIR   := $(BUILD)/fuzz
FUZZ_ALL   := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_CFLAGS := $(CFLAGS_BASE) -O2 -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer -Ifuzz
FUZZ_LIB   := $(FUZZ_DIR)/lib/libeskit.a
fuzz_svc = $(call svc_of,$(1))
fuzz_svc_lib = $(if $(call fuzz_svc,$(1)),$(FUZZ_DIR)/lib/libsvc-$(call fuzz_svc,$(1)).a)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(addprefix -I,$(dir $<)) -c $< -o $@

$(FUZZ_LIB): $(COMMON_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

fuzz_svc_obj = $(addprefix $(FUZZ_DIR)/obj/,$(subst .c,.o,$(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c)))) \
  $(if $(wildcard services/$(1)/schema/pg/*.sql),$(FUZZ_DIR)/obj/$(BUILD)/gen/$(1)-schema.o)
# What pattern rules build only for other pattern rules is kept. A list, not
# every target: a missing secondary file forces no rebuild, and the flags
# stamp must force one.
.SECONDARY: $(COMMON_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/fuzz/fuzzlib.o \
  $(foreach s,$(SERVICES),$(call fuzz_svc_obj,$(s)) $(FUZZ_DIR)/lib/libsvc-$(s).a \
  $(BUILD)/lib/libsvc-$(s).a)
$(FUZZ_DIR)/lib/libsvc-%.a: $$(call fuzz_svc_obj,$$*)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/bin/%: fuzz/%.c $(FUZZ_DIR)/obj/fuzz/fuzzlib.o $$(call fuzz_svc_lib,$$*) $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(if $(call fuzz_svc,$*),-Iservices/$(call fuzz_svc,$*)) \
	  -o $@ $< $(FUZZ_DIR)/obj/fuzz/fuzzlib.o $(call fuzz_svc_lib,$*) $(FUZZ_LIB) $(LIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/bin/%)

# Any crash, leak, sanitizer report or failed check fails the run.
fuzz: fuzz-build
	@FUZZ_RUNS=$(FUZZ_RUNS) tools/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_DIR) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@FUZZ_RUNS=0 tools/fuzz.sh smoke $(FUZZ_TEST_SECONDS) $(FUZZ_DIR) $(FUZZ_TARGETS)

run: deps all
	@tools/run.sh $(abspath $(BUILD)/bin)

bench: deps all
	@bench/run.sh $(abspath $(BUILD)/bin)

SOAK_RUN = ESKIT_BIN_DIR=$(abspath $(BUILD)/bin) ESKIT_SANITIZE=$(SANITIZE) \
  SOAK_BACKEND=$(SOAK_BACKEND) SOAK_SEED=$(SOAK_SEED) $(PYTHON) tests/soak/soak.py
soak: deps all
	SOAK_SECONDS=$(SOAK_SECONDS) $(SOAK_RUN)

lint:
	@tools/lint.sh

# --- deployment (docs/deploy.md) ----------------------------------------------------
# deploy: the engine DOCKER_HOST names, else the system's, else a private one
# (tools/docker/dockerd.sh); images it lacks are built (tools/docker/images.sh).
deploy: deps
	@$(PYTHON) tools/docker/stack.py up

deploy-down:
	@$(PYTHON) tools/docker/stack.py down

# Without a current context kubectl would talk to http://localhost:8080, which
# is where the event store listens: refuse instead.
KUBECTL ?= kubectl
K8S_APPLY_FLAGS ?=
deploy-k8s:
	@$(KUBECTL) config current-context >/dev/null 2>&1 || { \
	  echo "deploy-k8s: kubectl has no current context (set KUBECONFIG or ~/.kube/config);" \
	       "without one it would talk to http://localhost:8080" >&2; exit 1; }
	$(KUBECTL) apply -k deploy/k8s $(K8S_APPLY_FLAGS)
	@echo "deploy-k8s: applied; the cluster must be able to pull eskit:latest (docs/deploy.md)." \
	      "Then: $(KUBECTL) -n eskit rollout status deploy/event-store"

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/tests $(BUILD)/fuzz -name '*.d' 2>/dev/null)

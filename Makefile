# caravan - build and test.
#
# Targets
#   all (default)  priv/caravan_port, the C program behind caravan's ports
#   deps           install the Debian packages the project needs (scripts/deps.sh)
#   test           every suite (cmocka, EUnit, Common Test); ends with
#                  "N passed, N failed, N skipped" (CI=true: unexplained skips fail)
#   test-c         cmocka tests of the C program only
#   eunit, ct      the Erlang suites only (CT_SUITES=caravan_dist_SUITE limits ct)
#   elixir         the Elixir tier: test/elixir's ExUnit tests (mix test, offline)
#   dialyzer       type analysis of erl_src (part of test)
#   demo           three nodes with no epmd connect to each other, then stop
#   bench          benchmarks side by side (bench/)
#   fuzz           libFuzzer on every parser of untrusted bytes, FUZZ_SECONDS each (test/fuzz/)
#   asan           the C program and cmocka tests built with ASan + UBSan (_build/asan/)
#   check-leaks    valgrind over a long mixed request stream: no leaks, no errors
#   mutants        plant each bug of test/mutants/ and run its suite; reports caught/total
#                  (not part of test: each mutant costs a suite run)
#   clean          remove build output
#
# Variables
#   CFLAGS         optimisation and debug flags (default -O2 -g)
#   V=1            echo every command
#   CC             the C compiler (default cc)
#   FUZZ_SECONDS   how long `make fuzz` runs each target (default 30)

CFLAGS ?= -O2 -g
CC ?= cc
WARNINGS := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
DEFINES := -D_POSIX_C_SOURCE=200809L
# The version has one home, the application resource file; the C program
# (--version, the info op) is compiled with it.
CARAVAN_VSN := $(shell sed -n 's/^ *{vsn, *"\([^"]*\)"}.*/\1/p' erl_src/caravan.app.src)
ifeq ($(CARAVAN_VSN),)
$(error no {vsn, "..."} found in erl_src/caravan.app.src)
endif
DEFINES += -DCARAVAN_VERSION='"$(CARAVAN_VSN)"'

# ei ships only as a static library inside OTP; ask erl where this OTP keeps it.
ERL ?= erl
EI_DIR := $(shell $(ERL) -noshell -eval 'io:format("~s", [code:lib_dir(erl_interface)]), halt().' 2>/dev/null)
EI_CFLAGS := -I$(EI_DIR)/include
EI_LIBS := -L$(EI_DIR)/lib -lei -lpthread

# Libraries found through pkg-config, as Debian's -dev packages install them.
# libcurl is compiled against but not linked: http.c loads it with dlopen()
# on the first HTTP request (see there why).
# c-ares is linked statically (libcares.a from libc-ares-dev), as ei is, so
# priv/caravan_port needs no libcares.so.2 in a slim release image.
PKG_CFLAGS := $(shell pkg-config --cflags libcares libcurl 2>/dev/null)
CARES_LIBDIR := $(shell pkg-config --variable=libdir libcares 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)
CARES_STATIC := $(CARES_LIBDIR)/libcares.a
PKG_LIBS := $(CARES_STATIC) $(filter-out -lcares,$(shell pkg-config --static --libs libcares 2>/dev/null)) -ldl

BUILD := _build/c
PORT := priv/caravan_port
# main.c at the top, every subsystem in a folder of its own (core dns http
# catalog cli). Objects mirror the folders, so equal basenames never collide.
PORT_SRCS := $(wildcard port_src/*.c port_src/*/*.c)
PORT_DIRS := $(sort $(dir $(wildcard port_src/*/*.h)))
# Headers are included by name ("dns.h"): every folder is on the quote path
# (-iquote: <system> headers are never looked up there).
PORT_INCLUDES := -iquote port_src $(PORT_DIRS:%=-iquote %)
PORT_OBJS := $(PORT_SRCS:port_src/%.c=$(BUILD)/%.o)
# Everything but main: what the cmocka tests link against.
LIB_OBJS := $(filter-out $(BUILD)/main.o,$(PORT_OBJS))

C_TEST_SRCS := $(wildcard test/c/test_*.c)
C_TESTS := $(C_TEST_SRCS:test/c/%.c=$(BUILD)/%)

ALL_CFLAGS := $(WARNINGS) $(DEFINES) $(PORT_INCLUDES) $(EI_CFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LIBS := $(EI_LIBS) $(PKG_LIBS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all deps test test-c c-tests eunit ct elixir dialyzer asan fuzz fuzz-build check-leaks demo bench bench-scale clean check-ei

all: $(PORT)

check-ei:
	@test -n "$(EI_DIR)" -a -f "$(EI_DIR)/lib/libei.a" || \
	  { echo "erl_interface (libei.a) not found: run 'make deps' (needs erlang-dev)"; exit 1; }

$(PORT): $(PORT_OBJS) | check-ei
	@mkdir -p priv
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(PORT_OBJS) $(LIBS)

$(BUILD)/%.o: port_src/%.c | check-ei
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/test_%: test/c/test_%.c $(LIB_OBJS)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -o $@ $< $(LIB_OBJS) $(LIBS) -lcmocka $(TEST_LDFLAGS)

-include $(wildcard $(BUILD)/*.d $(BUILD)/*/*.d)

# --- Sanitizers: the same sources with ASan + UBSan; any report is fatal. ---
ASAN_BUILD := _build/asan
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OBJS := $(PORT_SRCS:port_src/%.c=$(ASAN_BUILD)/%.o)
ASAN_LIB_OBJS := $(filter-out $(ASAN_BUILD)/main.o,$(ASAN_OBJS))
ASAN_TESTS := $(C_TEST_SRCS:test/c/%.c=$(ASAN_BUILD)/%)

$(ASAN_BUILD)/%.o: port_src/%.c | check-ei
	@mkdir -p $(@D)
	@echo "  CC/SAN  $<"
	$(Q)$(CC) $(ALL_CFLAGS) -O1 $(SAN_FLAGS) -MMD -MP -c -o $@ $<

$(ASAN_BUILD)/caravan_port: $(ASAN_OBJS)
	@echo "  LD/SAN  $@"
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $(ASAN_OBJS) $(LIBS)

$(ASAN_BUILD)/test_%: test/c/test_%.c $(ASAN_LIB_OBJS)
	@echo "  CC/SAN  $<"
	$(Q)$(CC) $(ALL_CFLAGS) -O1 $(SAN_FLAGS) -o $@ $< $(ASAN_LIB_OBJS) $(LIBS) -lcmocka $(TEST_LDFLAGS)

asan: $(ASAN_BUILD)/caravan_port $(ASAN_TESTS)

# test_ops plants encode failures (out of memory) and counts ei's reallocs
# through these wrappers.
$(BUILD)/test_ops $(ASAN_BUILD)/test_ops: TEST_LDFLAGS := -Wl,--wrap=ei_x_encode_atom \
  -Wl,--wrap=ei_realloc
# test_dns_msg counts how often the parser grows its arrays.
$(BUILD)/test_dns_msg $(ASAN_BUILD)/test_dns_msg: TEST_LDFLAGS := -Wl,--wrap=grow_array

-include $(wildcard $(ASAN_BUILD)/*.d $(ASAN_BUILD)/*/*.d)

# --- Fuzzing: clang's libFuzzer with ASan + UBSan on each parser. ---
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_BUILD := _build/fuzz
FUZZ_TARGETS := request dns_msg consul nomad args http_header register
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all
FUZZ_LIB_OBJS := $(filter-out $(FUZZ_BUILD)/main.o,$(PORT_SRCS:port_src/%.c=$(FUZZ_BUILD)/%.o))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/%.o: port_src/%.c | check-ei
	@mkdir -p $(@D)
	@echo "  CC/FUZZ $<"
	$(Q)$(FUZZ_CC) $(WARNINGS) $(DEFINES) $(PORT_INCLUDES) $(EI_CFLAGS) $(PKG_CFLAGS) $(FUZZ_FLAGS) \
	  -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	@echo "  LD/FUZZ $@"
	$(Q)$(FUZZ_CC) $(WARNINGS) $(DEFINES) $(EI_CFLAGS) $(PKG_CFLAGS) $(FUZZ_FLAGS) \
	  -fsanitize=fuzzer $(PORT_INCLUDES) -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

-include $(wildcard $(FUZZ_BUILD)/*.d $(FUZZ_BUILD)/*/*.d)

check-leaks: all
	@scripts/check-leaks.sh

.PHONY: mutants
mutants: all
	@scripts/mutants.sh

deps:
	@scripts/deps.sh

# Each suite writes its log under _build/test-logs; the summary sums them all,
# so one failing suite does not hide the others' results.
test: deps
	@scripts/run-tests.sh all

c-tests: $(C_TESTS)

test-c:
	@scripts/run-tests.sh c

eunit: $(PORT)
	@scripts/run-tests.sh eunit

ct: $(PORT)
	@scripts/run-tests.sh ct

elixir: $(PORT)
	@scripts/run-tests.sh elixir

dialyzer: $(PORT)
	@scripts/run-tests.sh dialyzer

demo:
	@scripts/demo.sh

# parse_bench times today's JSON reading against c1dd4bb's, built from git.
$(BUILD)/old_parser.o: bench/old_parser.sh
	@echo "  OLD     $@"
	$(Q)bench/old_parser.sh $@ $(CC) $(ALL_CFLAGS)

$(BUILD)/parse_bench: bench/parse_bench.c $(LIB_OBJS) $(BUILD)/old_parser.o
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJS) $(BUILD)/old_parser.o $(LIBS)

bench: all $(BUILD)/parse_bench
	@bench/run.sh

# bench-scale: 32, 64 and 100 nodes on this machine (bench/scale_bench.escript,
# docs/scale.md); CARAVAN_SCALE_NODES="32 64" for fewer.
bench-scale: all
	@rebar3 compile >/dev/null
	@escript bench/scale_bench.escript "$(CURDIR)/_build/default/lib/caravan/ebin" "$(CURDIR)/test"

clean:
	rm -rf _build priv/caravan_port

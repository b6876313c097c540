# tests/fuzz/fuzz.mk: builds the fuzz targets with clang's libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs each for
# FUZZ_SECONDS. `make fuzz` calls it with the variables below; by hand:
#   make -f tests/fuzz/fuzz.mk LIB_SRCS="tensor/error.c ..." run
# The library is compiled again here (into $(OUT)/obj), instrumented for
# coverage and without OpenMP. New inputs the fuzzer finds go to
# $(OUT)/corpus/<target> (the committed seeds in tests/fuzz/corpus are only
# read); a crashing input is saved as $(OUT)/crash-<target>-<hash>.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
srcdir ?= .
OUT ?= tests/fuzz/build
LIB_SRCS ?=
BLIS_CFLAGS ?=
BLIS_LIBS ?= -lblis
ZLIB_CFLAGS ?=
ZLIB_LIBS ?= -lz
TARGETS ?= safetensors module_load optim_load idx cmudict

SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FCFLAGS = -std=c11 -g -O1 -D_GNU_SOURCE -Iinclude -I$(srcdir)/include -I$(srcdir) \
	$(BLIS_CFLAGS) $(ZLIB_CFLAGS) $(SAN) -fsanitize=fuzzer-no-link -Wno-unknown-pragmas

LIB_OBJS = $(patsubst %.c,$(OUT)/obj/%.o,$(filter %.c,$(LIB_SRCS)))
COMMON_OBJS = $(OUT)/obj/tests/fuzz/fuzz.o $(OUT)/obj/tests/fuzz/net.o
# Extra objects and libraries per target.
idx_OBJS = $(OUT)/obj/examples/common/idx.o
idx_LIBS = $(ZLIB_LIBS)
cmudict_OBJS = $(OUT)/obj/examples/common/cmudict.o
cmudict_LIBS = $(ZLIB_LIBS)

all: $(TARGETS:%=$(OUT)/fuzz_%)

$(OUT)/obj/%.o: $(srcdir)/%.c
	@mkdir -p $(@D)
	@echo "  FUZZCC   $<"
	@$(FUZZ_CC) $(FCFLAGS) -c $< -o $@

$(LIB_OBJS) $(COMMON_OBJS): $(wildcard $(srcdir)/include/cformer/*.h $(srcdir)/*/internal.h)

.SECONDEXPANSION:
$(OUT)/fuzz_%: $(OUT)/obj/tests/fuzz/fuzz_%.o $(COMMON_OBJS) $$($$*_OBJS) $(LIB_OBJS)
	@echo "  FUZZLD   $@"
	@$(FUZZ_CC) $(SAN) -fsanitize=fuzzer $^ -o $@ $(BLIS_LIBS) $($*_LIBS) -lm

# Runs each target; fails when one finds a crash, printing how to replay it.
run: all
	@fail=0; for t in $(TARGETS); do \
	  mkdir -p $(OUT)/corpus/$$t; \
	  case $$t in idx) dict= ;; cmudict) dict=-dict=$(srcdir)/tests/fuzz/cmudict.dict ;; \
	    *) dict=-dict=$(srcdir)/tests/fuzz/safetensors.dict ;; esac; \
	  $(OUT)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(OUT)/crash-$$t- $$dict $(OUT)/corpus/$$t $(srcdir)/tests/fuzz/corpus/$$t \
	    > $(OUT)/$$t.log 2>&1; st=$$?; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(OUT)/$$t.log); \
	  secs=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(OUT)/$$t.log); \
	  cov=$$(grep -o 'cov: [0-9]*' $(OUT)/$$t.log | tail -1); \
	  corpus=$$(ls $(OUT)/corpus/$$t | wc -l); \
	  if [ $$st -eq 0 ]; then \
	    echo "fuzz $$t: $${execs:-?} executions ($${secs:-?}/s), $$cov, corpus $$corpus, no crash"; \
	  else \
	    fail=1; echo "fuzz $$t: FAILED (exit $$st) after $${execs:-?} executions; log $(OUT)/$$t.log:"; \
	    grep -E 'contract broken|ERROR|SUMMARY|Test unit written' $(OUT)/$$t.log | head -8; \
	    echo "replay: $(OUT)/fuzz_$$t $(OUT)/crash-$$t-*"; \
	  fi; \
	done; exit $$fail

clean:
	rm -rf $(OUT)

.SECONDARY:
.PHONY: all run clean

# Training recipe targets; included by the top-level Makefile (which defines VENV and `venv`).
#   make train         full run: synth -> feature cache -> tokenizer -> train -> average -> export -> timing
#                      calibration -> promotion if the engine scores it better (resumable)
#   make train-smoke   a few steps on ~30 utterances with a tiny model, into a temp dir (< 5 min)
#   make train-hybrid-data train-hybrid train-hybrid-export   the shipped model: Whisper's
#                      layers under the native speller (below, "The hybrid")
#   make train-lm      the language model of models/default (resumable; see train-lm below)
#   make train-teacher Whisper's encoder states and transcripts for distillation (resumable)
# Every step skips what is already done, so re-running `make train` continues the run.

VENV ?= .venv
# The corpora sit next to the checkout (../shared/speech); set SPEECH elsewhere.
SPEECH ?= $(abspath ../shared/speech)
RUNS ?= /work/lasr-runs
TRAIN_CONFIG ?= configs/default.yaml
TRAIN_OUT ?= $(RUNS)/default
MODEL_OUT ?= models/default
PARITY_FIXTURES ?= Tests/LasrTests/Fixtures/model-parity
# Epoch checkpoints train-average averages for the export of `make train`.
AVERAGE ?= 3
# The checkpoint train-export considers, and where its export waits for the verdict.
CHECKPOINT ?= $(TRAIN_OUT)/best.pt
CANDIDATE ?= $(RUNS)/candidate
# The vocabulary train-export writes beside the weights (a run from INIT keeps INIT's).
TOKENS_DIR ?= $(RUNS)/tokenizer
# Facts of the run for MODEL_CARD.md (a JSON object, line -> text), e.g. CARD=training/model-card-default.json
# for the run that trained models/default; the checkpoint's step and hours are added anyway.
CARD ?=
# More options of lasr_train.export, e.g. EXPORT_ARGS="--decoding beam=12" (search defaults tuned on dev).
EXPORT_ARGS ?=
TRAIN_NICE ?= nice -n 15
TRAIN_JOBS ?= 2
# The cached sets an epoch lists, each DIR:REPEATS.
TRAIN_CACHES ?= $(RUNS)/cache/train:2 $(RUNS)/cache/synth:1
# An exported model directory a new run starts from instead of random weights
# (lasr_train.train --init-model; ignored once TRAIN_OUT has a last.pt to resume).
INIT ?=
# summary.json of each synthetic set the run trained on (a list), for the model card; "none"
# for a run that trained on no synthetic speech of its own.
SYNTH_SUMMARY ?= $(RUNS)/synth/summary.json
# Extra arguments for lasr_train.train, e.g. "--max-steps 6086 --set training.ctc_weight=1.0"
# (training/README.md "How models/default was trained" runs the phases this way).
TRAIN_ARGS ?=
SMOKE_DIR ?= /tmp/lasr-train-smoke
LASR_PY = PYTHONPATH=training $(TRAIN_NICE) $(VENV)/bin/python -m
PROMPTS := $(SPEECH)/text/ljspeech-sentences.txt
# Engine weights of the synthetic set (lasr_train.synth --mix). The default is the mix of
# the set models/default was trained on; festival and piper joined the recipe after it.
SYNTH_MIX ?= espeak:3,flite:1

.PHONY: train train-smoke train-data train-average train-export train-lm train-teacher

# The language model of MODEL_OUT (lasr_train.lm), trained on the public-domain books and
# the LJ Speech sentences, into a run directory named by the vocabulary's CRC-32: a new
# vocabulary gets a new run, an interrupted one resumes (LM_OUT names the run inside it; an
# LM of another shape needs another name). A second stage (LM_ADAPT_OUT) goes on from it
# with LM_ADAPT_COPIES copies of the acoustic model's training transcripts (LM_ADAPT_TEXT)
# added to the books, since the search discounts the decoder's own prior, learned from
# them (LM_ILM, the internal-LM weight; training/README.md). The export adds
# lm.safetensors, the lm: section (LM_WEIGHT, LM_BONUS, LM_ILM: the fusion defaults tuned
# on dev, ranked by total score) and the card's "Language model" section to MODEL_OUT and
# writes the Swift parity fixture; then the card's dev WER is measured with the LM and
# without it (lasr_train.promote --card-only).
LM_TEXT ?= $(abspath $(SPEECH)/../text/books/books.txt.xz) $(PROMPTS)
LM_ARGS ?= --hidden 512 --embed 256 --layers 1 --batch-tokens 4096 --max-steps 10000 --lr 2e-3 --warmup 200 \
  --eval-every 2000 --save-every 100 --log-every 50 --threads $(TRAIN_JOBS)
LM_ADAPT_TEXT ?= $(SPEECH)/train.jsonl $(SPEECH)/extra.jsonl
LM_ADAPT_COPIES ?= 80
LM_ADAPT_ARGS ?= --hidden 512 --embed 256 --layers 1 --batch-tokens 4096 --max-steps 1500 --lr 1e-3 --warmup 100 \
  --eval-every 500 --save-every 100 --log-every 50 --threads $(TRAIN_JOBS)
LM_WEIGHT ?= 0.35
LM_BONUS ?= 0.75
LM_ILM ?= 0.2
# The word check (lasr_train.lm lexicon): the LM text's words seen at least LEXICON_MIN_COUNT
# times, and the common (lowercase) words of LEXICON_WORDS, a word list the wamerican package
# installs, so that words of today the books never use are not penalized; and the penalty δ
# a fused hypothesis pays for a word outside them (tuned on dev).
LEXICON_MIN_COUNT ?= 1
LEXICON_PENALTY ?= 1.0
# Another LEXICON_WORDS needs its own LEXICON_NOTICE (its copyright and licence).
LEXICON_WORDS ?= /usr/share/dict/american-english
LEXICON_NOTICE ?= /usr/share/doc/wamerican/copyright
LM_FIXTURES ?= Tests/LasrTests/Fixtures/lm-parity
LM_RUN = $(RUNS)/lm/vocab-$(shell python3 -c "import zlib,sys;print('%08x' % zlib.crc32(open(sys.argv[1],'rb').read()))" $(MODEL_OUT)/tokens.txt)
LM_OUT ?= $(LM_RUN)/run512
LM_ADAPT_OUT ?= $(LM_RUN)/adapt
train-lm: venv
	$(call apt_install,wamerican)
	$(LASR_PY) lasr_train.lm prepare --text $(LM_TEXT) --model $(MODEL_OUT) --out $(LM_RUN)/data --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.lm train --data $(LM_RUN)/data --out $(LM_OUT) --resume $(LM_ARGS)
	$(LASR_PY) lasr_train.lm prepare --text $(LM_ADAPT_TEXT) --model $(MODEL_OUT) --out $(LM_RUN)/data-transcripts --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.lm train --data $(LM_RUN)/data --add-data $(LM_RUN)/data-transcripts:$(LM_ADAPT_COPIES) \
	  --init $(LM_OUT)/last.pt --out $(LM_ADAPT_OUT) --resume $(LM_ADAPT_ARGS)
	$(LASR_PY) lasr_train.lm export --checkpoint $(LM_ADAPT_OUT)/last.pt --model $(MODEL_OUT) --fixtures $(LM_FIXTURES) \
	  --weight $(LM_WEIGHT) --length-bonus $(LM_BONUS) --internal-lm-weight $(LM_ILM)
	$(LASR_PY) lasr_train.lm lexicon --data $(LM_RUN)/data --model $(MODEL_OUT) --min-count $(LEXICON_MIN_COUNT) \
	  --penalty $(LEXICON_PENALTY) --words $(LEXICON_WORDS) --notice $(LEXICON_NOTICE)
	$(LASR_PY) lasr_train.lm perplexity --checkpoint $(LM_ADAPT_OUT)/last.pt --data $(LM_RUN)/data
	$(SWIFT) build -c release --product lasr $(RELEASE_FLAGS)
	$(LASR_PY) lasr_train.promote --candidate $(MODEL_OUT) --card-only --manifest $(SPEECH)/dev.jsonl \
	  --lasr $(LASR) --jobs $(TRAIN_JOBS)

# The teacher (training/README.md, "The teacher"): Whisper run once over every real
# recording, transcribed or not, into TEACHER_CACHE (pooled encoder states of
# TEACHER_LAYERS, and transcripts of the English unlabeled audio); resumable, so an
# interrupted pass goes on where it stopped. TEACHER is installed on first use.
# Then the confident transcripts become a manifest (selected.jsonl), and it, extra.jsonl
# and the unlabeled audio (for the distillation loss alone) become feature caches.
TEACHER ?= models/whisper-tiny.en
TEACHER_LAYERS ?= 2 4
TEACHER_CACHE ?= $(RUNS)/teacher/$(notdir $(TEACHER))
train-teacher: venv
	[ -f $(TEACHER)/model.safetensors ] || { $(SWIFT) build -c release --product lasr $(RELEASE_FLAGS) && \
	  $(LASR) models install $(notdir $(TEACHER)); }
	$(LASR_PY) lasr_train.teacher cache --teacher $(TEACHER) --manifest $(SPEECH)/train.jsonl $(SPEECH)/extra.jsonl \
	  $(SPEECH)/unlabeled.jsonl --layers $(TEACHER_LAYERS) --out $(TEACHER_CACHE) --threads $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.teacher select --cache $(TEACHER_CACHE) --out $(TEACHER_CACHE)/selected.jsonl
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(TEACHER_CACHE)/selected.jsonl \
	  --out $(RUNS)/cache/teacher-text --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/extra.jsonl \
	  --out $(RUNS)/cache/extra --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/unlabeled.jsonl --unlabeled \
	  --out $(RUNS)/cache/unlabeled --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)

train: train-data
	$(LASR_PY) lasr_train.train --config $(TRAIN_CONFIG) --tokens $(RUNS)/tokenizer \
	  --train-cache $(TRAIN_CACHES) --dev-cache $(RUNS)/cache/dev --noise-cache $(RUNS)/cache/noise \
	  --out $(TRAIN_OUT) --resume $(if $(INIT),--init-model $(INIT)) $(TRAIN_ARGS)
	$(MAKE) --no-print-directory train-average
	$(MAKE) --no-print-directory train-export CHECKPOINT=$(TRAIN_OUT)/average.pt

# The weights of the last AVERAGE epoch checkpoints, averaged (lasr_train.average).
train-average: venv
	$(LASR_PY) lasr_train.average --out $(TRAIN_OUT)/average.pt $$(ls $(TRAIN_OUT)/epoch-*.pt | tail -n $(AVERAGE))

# Synthetic speech, feature caches and the vocabulary (each skips finished work). A run
# from INIT takes that model's vocabulary, since its weights are tied to it.
train-data: venv
	$(LASR_PY) lasr_train.synth --text $(PROMPTS) --out $(RUNS)/synth --mix $(SYNTH_MIX) --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/train.jsonl \
	  --out $(RUNS)/cache/train --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(RUNS)/synth/manifest.jsonl \
	  --out $(RUNS)/cache/synth --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/dev.jsonl \
	  --out $(RUNS)/cache/dev --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/noise.jsonl --unlabeled \
	  --out $(RUNS)/cache/noise --jobs $(TRAIN_JOBS)
	$(if $(INIT),[ -f $(RUNS)/tokenizer/tokens.txt ] || { mkdir -p $(RUNS)/tokenizer && \
	  cp $(INIT)/tokens.txt $(wildcard $(INIT)/sentencepiece.model) $(RUNS)/tokenizer/; })
	$(LASR_PY) lasr_train.tokenizer --config $(TRAIN_CONFIG) --manifests $(SPEECH)/train.jsonl \
	  --text $(PROMPTS) --out $(RUNS)/tokenizer --skip-existing
	$(LASR_PY) lasr_train.timing render --text $(PROMPTS) --out $(RUNS)/timing

# Export CHECKPOINT (the run's best by greedy dev WER unless set) into a candidate
# directory with its parity fixtures, measure its attention lag and token span with the engine
# (lasr_train.timing), then let lasr_train.promote score it and the shipped model with
# `lasr eval` on dev.jsonl: the candidate (card filled with the measured error rates)
# replaces MODEL_OUT and PARITY_FIXTURES only if it makes fewer LibriSpeech errors with a
# probability of improvement of at least MIN_POI (paired bootstrap over the utterances),
# and is not, as surely, worse when it decodes with the shipped model's LM.
MIN_POI ?= 0.95
train-export: venv
	rm -rf $(CANDIDATE) $(CANDIDATE)-fixtures
	$(LASR_PY) lasr_train.export --checkpoint $(CHECKPOINT) --tokens $(TOKENS_DIR) --fixture-text-file $(PROMPTS) \
	  --out $(CANDIDATE) --fixtures $(CANDIDATE)-fixtures $(if $(CARD),--card $(CARD)) $(EXPORT_ARGS) \
	  $(if $(filter none,$(SYNTH_SUMMARY)),--synth-summary none,$(if $(wildcard $(SYNTH_SUMMARY)),--synth-summary $(SYNTH_SUMMARY)))
	$(LASR_PY) lasr_train.timing render --text $(PROMPTS) --out $(RUNS)/timing
	$(SWIFT) build -c release --product lasr $(RELEASE_FLAGS)
	$(LASR_PY) lasr_train.timing calibrate --model $(CANDIDATE) --manifest $(RUNS)/timing/manifest.jsonl \
	  --lasr $(LASR) --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.promote --candidate $(CANDIDATE) --target $(MODEL_OUT) --fixtures $(CANDIDATE)-fixtures \
	  --fixtures-target $(PARITY_FIXTURES) --manifest $(SPEECH)/dev.jsonl --lasr $(LASR) --jobs $(TRAIN_JOBS) \
	  --min-poi $(MIN_POI)

# The CPU run that made models/default (training/README.md, "Synthetic voices back in the
# mix"), as make targets, so it can start again on a fresh machine or go on where it
# stopped (every step skips finished work; the training resumes RUN_OUT/last.pt):
#   make train-run-data                      its data: real speech, extra voices, noise, the
#                                            festival/piper set, the teacher's transcripts
#   make train-run RUN_MINUTES=50            train on (from RUN_INIT's weights the first time)
#   make train-run RUN_MINUTES=29 RUN_COOLDOWN=28   the same, ending in a linear cooldown
#   make train-run-export                    average RUN_OUT/last.pt with RUN_INIT, then
#                                            train-export (calibration, paired test, promotion)
# A cooldown runs the rate to zero, so keep the branch point first to go on afterwards:
# RUN_BRANCH=NAME copies last.pt to NAME.pt before training, and train-run-branch
# RUN_BRANCH=NAME copies it back. RUN_STEPS=N stops at step N (to compare two runs at the
# same point); RUN_SET adds `--set` overrides to RUN_ARGS (an experiment's one change);
# RUN_FLAGS adds options of lasr_train.train (say the teacher caches of a distillation arm).
RUN_OUT ?= $(RUNS)/cpu-run
RUN_INIT ?= models/default
RUN_MINUTES ?= 50
RUN_COOLDOWN ?= 0
RUN_STEPS ?= 0
RUN_SET ?=
RUN_FLAGS ?=
RUN_BRANCH ?=
RUN_SYNTH ?= $(RUNS)/synth-fp2
RUN_CACHES ?= $(RUNS)/cache/train:2 $(RUNS)/cache/extra:1 $(RUNS)/cache/teacher-text:1 $(RUNS)/cache/synth-fp2:1
RUN_ARGS ?= training.seed=20261208 training.lr=2.0e-4 training.warmup_steps=200 training.batch_seconds=320 \
  training.max_batch=64 training.ctc_weight=0.4 training.augment.noise_prob=0 training.sortagrad=false \
  training.eval_every=0 training.epochs=1000 training.augment.real_noise_prob=0.4 \
  training.augment.reverb_prob=0.3 training.augment.colour_prob=0.5 training.augment.telephone_prob=0.1
TEACHER_EN ?= $(RUNS)/teacher/tiny.en-unlabeled-en

.PHONY: train-run-data train-run train-run-branch train-run-export
train-run-data: venv
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/train.jsonl \
	  --out $(RUNS)/cache/train --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/extra.jsonl \
	  --out $(RUNS)/cache/extra --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(SPEECH)/noise.jsonl --unlabeled \
	  --out $(RUNS)/cache/noise --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.synth --text $(PROMPTS) --out $(RUN_SYNTH) --skip 4424 --limit 4000 \
	  --mix festival:1,piper:1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(RUN_SYNTH)/manifest.jsonl \
	  --out $(RUNS)/cache/synth-fp2 --jobs $(TRAIN_JOBS)
	[ -f models/whisper-tiny.en/model.safetensors ] || { $(SWIFT) build -c release --product lasr $(RELEASE_FLAGS) && \
	  $(LASR) models install whisper-tiny.en; }
	$(LASR_PY) lasr_train.teacher cache --teacher models/whisper-tiny.en --manifest $(SPEECH)/unlabeled.jsonl \
	  --languages en --layers 4 --out $(TEACHER_EN) --threads $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.teacher select --cache $(TEACHER_EN) --out $(TEACHER_EN)/selected.jsonl
	$(LASR_PY) lasr_train.data --config $(TRAIN_CONFIG) --manifests $(TEACHER_EN)/selected.jsonl \
	  --out $(RUNS)/cache/teacher-text --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)

train-run: venv
	$(if $(RUN_BRANCH),[ ! -f $(RUN_OUT)/last.pt ] || cp $(RUN_OUT)/last.pt $(RUN_OUT)/$(RUN_BRANCH).pt)
	$(LASR_PY) lasr_train.train --init-model $(RUN_INIT) --tokens $(RUN_INIT) --train-cache $(RUN_CACHES) \
	  --noise-cache $(RUNS)/cache/noise --out $(RUN_OUT) --resume --max-minutes $(RUN_MINUTES) \
	  $(if $(filter-out 0,$(RUN_COOLDOWN)),--cooldown-minutes $(RUN_COOLDOWN)) \
	  $(if $(filter-out 0,$(RUN_STEPS)),--max-steps $(RUN_STEPS)) --threads $(TRAIN_JOBS) $(RUN_FLAGS) --set $(RUN_ARGS) $(RUN_SET)

train-run-branch:
	cp $(RUN_OUT)/$(RUN_BRANCH).pt $(RUN_OUT)/last.pt

train-run-export: venv
	$(LASR_PY) lasr_train.average --out $(RUN_OUT)/average.pt $(RUN_INIT) $(RUN_OUT)/last.pt
	$(MAKE) --no-print-directory train-export CHECKPOINT=$(RUN_OUT)/average.pt TOKENS_DIR=$(RUN_INIT) \
	  SYNTH_SUMMARY=$(RUN_SYNTH)/summary.json

# The hybrid (training/README.md, "Whisper's layers in the engine"): Whisper tiny.en's conv
# front end and first four layers, frozen, at 40 ms, three fresh conv blocks after them, and
# the CTC head and speller of the native model of commit HYBRID_NATIVE_COMMIT (the conv
# model the recipe above made). Every step skips finished work or resumes:
#   make train-hybrid-data      tiny.en, that native model (from git), the run's first
#                               checkpoint, and its feature caches (the teacher's filterbank)
#   make train-hybrid           leg 1 on train.jsonl (HYBRID_MINUTES, a cooldown at the end),
#                               then leg 2 from leg 1's end, its rate schedule started again
#                               (--restart-from), on train + extra (HYBRID_MINUTES_2)
#   make train-hybrid-export    train-export of leg 2 (calibration, paired test, promotion)
# A leg stops at a time, not a step, so another machine stops elsewhere.
HYBRID_OUT ?= $(RUNS)/hybrid
HYBRID_NATIVE_COMMIT ?= 187e400
HYBRID_NATIVE ?= $(RUNS)/native-$(HYBRID_NATIVE_COMMIT)
HYBRID_CACHE ?= $(RUNS)/cache-hybrid
HYBRID_MINUTES ?= 28
HYBRID_COOLDOWN ?= 6
HYBRID_MINUTES_2 ?= 100
HYBRID_COOLDOWN_2 ?= 20
HYBRID_ARGS ?= training.lr=1.5e-3 training.warmup_steps=200 training.sortagrad=false training.eval_every=400 \
  training.dev_subset_per_corpus=40 training.epochs=1000 training.augment.noise_prob=0 training.dropout=0 \
  training.augment.specaugment=false
HYBRID_CARD ?= training/model-card-hybrid.json
# Beam 12 reads dev as beam 16 does within a few tenths with the LM, at 125x real time against
# 83x (training/README.md, "Whisper's layers in the engine").
HYBRID_EXPORT_ARGS ?= --decoding beam=12

.PHONY: train-hybrid-data train-hybrid train-hybrid-export
train-hybrid-data: venv
	[ -f models/whisper-tiny.en/model.safetensors ] || { $(SWIFT) build -c release --product lasr $(RELEASE_FLAGS) && \
	  $(LASR) models install whisper-tiny.en; }
	[ -f $(HYBRID_NATIVE)/model.safetensors ] || { mkdir -p $(HYBRID_NATIVE) && \
	  git archive $(HYBRID_NATIVE_COMMIT) models/default | tar -x -C $(HYBRID_NATIVE) --strip-components=2; }
	[ -f $(HYBRID_OUT)/last.pt ] || $(LASR_PY) lasr_train.hybrid init --teacher models/whisper-tiny.en \
	  --model $(HYBRID_NATIVE) --out $(HYBRID_OUT) --layers 4 --conv-blocks 3 --encoder-lr-scale 0 --threads $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(HYBRID_OUT)/config.yaml --manifests $(SPEECH)/train.jsonl \
	  --out $(HYBRID_CACHE)/train --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(HYBRID_OUT)/config.yaml --manifests $(SPEECH)/extra.jsonl \
	  --out $(HYBRID_CACHE)/extra --speeds 0.9 1.0 1.1 --jobs $(TRAIN_JOBS)
	$(LASR_PY) lasr_train.data --config $(HYBRID_OUT)/config.yaml --manifests $(SPEECH)/dev.jsonl \
	  --out $(HYBRID_CACHE)/dev --jobs $(TRAIN_JOBS)

train-hybrid: venv
	[ -f $(HYBRID_OUT)-2/last.pt ] || $(LASR_PY) lasr_train.train --tokens $(HYBRID_NATIVE) \
	  --train-cache $(HYBRID_CACHE)/train:1 --dev-cache $(HYBRID_CACHE)/dev --out $(HYBRID_OUT) --resume \
	  --max-minutes $(HYBRID_MINUTES) --cooldown-minutes $(HYBRID_COOLDOWN) --threads $(TRAIN_JOBS) --set $(HYBRID_ARGS)
	$(LASR_PY) lasr_train.train --tokens $(HYBRID_NATIVE) --train-cache $(HYBRID_CACHE)/train:1 $(HYBRID_CACHE)/extra:1 \
	  --dev-cache $(HYBRID_CACHE)/dev --out $(HYBRID_OUT)-2 --restart-from $(HYBRID_OUT)/last.pt \
	  --max-minutes $(HYBRID_MINUTES_2) --cooldown-minutes $(HYBRID_COOLDOWN_2) --threads $(TRAIN_JOBS) --set $(HYBRID_ARGS)

train-hybrid-export: venv
	$(MAKE) --no-print-directory train-export CHECKPOINT=$(HYBRID_OUT)-2/last.pt TOKENS_DIR=$(HYBRID_NATIVE) \
	  SYNTH_SUMMARY=none CARD=$(HYBRID_CARD) EXPORT_ARGS="$(HYBRID_EXPORT_ARGS)"

SMOKE_SET = --set encoder.subsampling_channels=8 encoder.d_model=48 encoder.num_blocks=2 \
  decoder.embed_dim=32 decoder.hidden=48 decoder.attention.dim=32 decoder.attention.filters=8 \
  decoder.attention.radius=5 vocabulary.size=64 training.batch_seconds=40 training.log_every=2 \
  training.eval_every=4 training.dev_subset_per_corpus=4 training.warmup_steps=10

train-smoke: venv
	rm -rf $(SMOKE_DIR) && mkdir -p $(SMOKE_DIR)
	$(LASR_PY) lasr_train.synth --text $(PROMPTS) --out $(SMOKE_DIR)/synth --limit 8 --jobs 1 \
	  --mix espeak:1,flite:1,festival:1,piper:1
	$(LASR_PY) lasr_train.data --manifests $(SPEECH)/train.jsonl --out $(SMOKE_DIR)/cache/train \
	  --speeds 0.9 1.0 1.1 --limit 16 --max-duration 8 --jobs 1
	$(LASR_PY) lasr_train.data --manifests $(SMOKE_DIR)/synth/manifest.jsonl --out $(SMOKE_DIR)/cache/synth --jobs 1
	$(LASR_PY) lasr_train.data --manifests $(SPEECH)/dev.jsonl --out $(SMOKE_DIR)/cache/dev \
	  --limit 8 --max-duration 8 --jobs 1
	$(LASR_PY) lasr_train.tokenizer --manifests $(SMOKE_DIR)/synth/manifest.jsonl $(SPEECH)/train.jsonl \
	  --out $(SMOKE_DIR)/tokenizer $(SMOKE_SET)
	$(LASR_PY) lasr_train.train --tokens $(SMOKE_DIR)/tokenizer --train-cache $(SMOKE_DIR)/cache/train:1 \
	  $(SMOKE_DIR)/cache/synth:1 --dev-cache $(SMOKE_DIR)/cache/dev --out $(SMOKE_DIR)/run --max-steps 4 $(SMOKE_SET)
	$(LASR_PY) lasr_train.train --tokens $(SMOKE_DIR)/tokenizer --train-cache $(SMOKE_DIR)/cache/train:1 \
	  $(SMOKE_DIR)/cache/synth:1 --dev-cache $(SMOKE_DIR)/cache/dev --out $(SMOKE_DIR)/run --max-steps 8 --resume
	$(LASR_PY) lasr_train.teacher random --out $(SMOKE_DIR)/teacher
	$(LASR_PY) lasr_train.teacher cache --teacher $(SMOKE_DIR)/teacher --manifest $(SPEECH)/train.jsonl \
	  $(SPEECH)/unlabeled.jsonl --limit 16 --max-duration 8 --shard-size 8 --layers 1 2 --out $(SMOKE_DIR)/teacher-cache \
	  --threads 1
	$(LASR_PY) lasr_train.teacher select --cache $(SMOKE_DIR)/teacher-cache --out $(SMOKE_DIR)/teacher-text.jsonl \
	  --min-avg-logprob -1000 --max-no-speech 1 --min-words 1
	$(LASR_PY) lasr_train.data --manifests $(SPEECH)/unlabeled.jsonl --unlabeled --out $(SMOKE_DIR)/cache/unlabeled \
	  --limit 16 --max-duration 8 --jobs 1
	$(LASR_PY) lasr_train.data --manifests $(SPEECH)/noise.jsonl --unlabeled --out $(SMOKE_DIR)/cache/noise --limit 4 --jobs 1
	$(LASR_PY) lasr_train.train --tokens $(SMOKE_DIR)/tokenizer --train-cache $(SMOKE_DIR)/cache/train:1 \
	  $(SMOKE_DIR)/cache/synth:1 --out $(SMOKE_DIR)/run-distill --max-steps 6 --teacher-cache $(SMOKE_DIR)/teacher-cache \
	  --distill-cache $(SMOKE_DIR)/cache/unlabeled:1 --noise-cache $(SMOKE_DIR)/cache/noise $(SMOKE_SET) \
	  training.distill.weight=0.5 training.distill.layers=1:1,2:2 training.augment.reverb_prob=0.5 \
	  training.augment.real_noise_prob=0.5 training.augment.colour_prob=0.5 training.augment.telephone_prob=0.2 \
	  training.augment.warp_prob=0.5
	grep -q "real noise: 4 clips" $(SMOKE_DIR)/run-distill/train.log
	grep -q "vocal tract length perturbation: 0.5 of utterances" $(SMOKE_DIR)/run-distill/train.log
	grep -q "distillation from .*: [1-9][0-9]* of .* training utterances have teacher states, and 16 without" \
	  $(SMOKE_DIR)/run-distill/train.log
	grep -q " distill [0-9]" $(SMOKE_DIR)/run-distill/train.log
	$(LASR_PY) lasr_train.export --checkpoint $(SMOKE_DIR)/run-distill/last.pt --tokens $(SMOKE_DIR)/tokenizer \
	  --fixture-text-file $(PROMPTS) --out $(SMOKE_DIR)/model-distill
	grep -q "^- teacher: teacher (OpenAI Whisper, MIT licence), run once over train.jsonl, unlabeled.jsonl" \
	  $(SMOKE_DIR)/model-distill/MODEL_CARD.md
	$(VENV)/bin/python -c "import sys, safetensors; n = safetensors.safe_open(sys.argv[1], 'np').keys(); \
	  sys.exit('distillation heads exported' if any('heads' in k for k in n) or len(n) == 0 else 0)" \
	  $(SMOKE_DIR)/model-distill/model.safetensors
	$(LASR_PY) lasr_train.export --checkpoint $(SMOKE_DIR)/run/last.pt --tokens $(SMOKE_DIR)/tokenizer --fixture-text-file $(PROMPTS) \
	  --out $(SMOKE_DIR)/model --fixtures $(SMOKE_DIR)/fixtures --synth-summary $(SMOKE_DIR)/synth/summary.json
	grep -q "synthetic speech (.*piper" $(SMOKE_DIR)/model/MODEL_CARD.md
	$(LASR_PY) lasr_train.hybrid init --teacher $(SMOKE_DIR)/teacher --model $(SMOKE_DIR)/model --out $(SMOKE_DIR)/run-hybrid \
	  --layers 1 --conv-blocks 1 --encoder-lr-scale 0 --threads 1
	$(LASR_PY) lasr_train.data --config $(SMOKE_DIR)/run-hybrid/config.yaml --manifests $(SPEECH)/train.jsonl \
	  --out $(SMOKE_DIR)/cache/train-hybrid --limit 16 --max-duration 8 --jobs 1
	$(LASR_PY) lasr_train.train --tokens $(SMOKE_DIR)/tokenizer --train-cache $(SMOKE_DIR)/cache/train-hybrid:1 \
	  --out $(SMOKE_DIR)/run-hybrid --resume --max-steps 4 --threads 1
	$(LASR_PY) lasr_train.export --checkpoint $(SMOKE_DIR)/run-hybrid/last.pt --tokens $(SMOKE_DIR)/tokenizer \
	  --fixture-text-file $(PROMPTS) --out $(SMOKE_DIR)/model-hybrid --fixtures $(SMOKE_DIR)/fixtures-hybrid --synth-summary none
	grep -q "^- encoder: Whisper's conv front end and 1 of its layers .*kept frozen" $(SMOKE_DIR)/model-hybrid/MODEL_CARD.md
	grep -q "^  type: whisper" $(SMOKE_DIR)/model-hybrid/config.yaml
	$(LASR_PY) lasr_train.timing render --text $(PROMPTS) --out $(SMOKE_DIR)/timing --count 2
	$(LASR_PY) lasr_train.lm prepare --text $(PROMPTS) --model $(SMOKE_DIR)/model --out $(SMOKE_DIR)/lm/data \
	  --max-paragraphs 400 --jobs 1
	$(LASR_PY) lasr_train.lm train --data $(SMOKE_DIR)/lm/data --out $(SMOKE_DIR)/lm/run --hidden 16 --embed 8 \
	  --batch-tokens 512 --max-steps 8 --stop-at 4 --eval-every 4 --save-every 2 --log-every 2 --threads 1
	$(LASR_PY) lasr_train.lm train --data $(SMOKE_DIR)/lm/data --out $(SMOKE_DIR)/lm/run --hidden 16 --embed 8 \
	  --batch-tokens 512 --max-steps 8 --eval-every 4 --save-every 2 --log-every 2 --threads 1 --resume
	$(LASR_PY) lasr_train.lm prepare --text $(SPEECH)/train.jsonl --model $(SMOKE_DIR)/model --out $(SMOKE_DIR)/lm/data-transcripts \
	  --max-paragraphs 200 --jobs 1
	$(LASR_PY) lasr_train.lm train --data $(SMOKE_DIR)/lm/data --add-data $(SMOKE_DIR)/lm/data-transcripts:3 \
	  --init $(SMOKE_DIR)/lm/run/last.pt --out $(SMOKE_DIR)/lm/adapt --hidden 16 --embed 8 --batch-tokens 512 \
	  --max-steps 4 --eval-every 4 --save-every 2 --log-every 2 --threads 1 --resume
	$(LASR_PY) lasr_train.lm export --checkpoint $(SMOKE_DIR)/lm/adapt/last.pt --model $(SMOKE_DIR)/model \
	  --fixtures $(SMOKE_DIR)/lm/fixtures --internal-lm-weight 0.2
	grep -q "internal_lm_weight: 0.2" $(SMOKE_DIR)/model/config.yaml
	grep -q "^- added text: 3 copies of the transcripts of train.jsonl" $(SMOKE_DIR)/model/MODEL_CARD.md
	$(LASR_PY) lasr_train.lm lexicon --data $(SMOKE_DIR)/lm/data --model $(SMOKE_DIR)/model --min-count 2
	$(LASR_PY) lasr_train.lm perplexity --checkpoint $(SMOKE_DIR)/lm/run/last.pt --data $(SMOKE_DIR)/lm/data
	grep -q "^lm:" $(SMOKE_DIR)/model/config.yaml && grep -q "lexicon: lexicon.txt" $(SMOKE_DIR)/model/config.yaml
	@echo "train-smoke OK ($(SMOKE_DIR))"

# fercli — every target installs what it needs first (`make install` is a no-op once done).
#
#   make demo            the main job on embedded synthetic data
#   make test            lint, then the whole test suite
#   make lint            ruff (unused imports and variables, undefined names, syntax errors)
#   make chapter3|4|5    reproduce a thesis chapter (DATA=... for a real dataset)
#   make chapter3 LAUNCH=slurm SLURM_ARGS="-p gpu --gpus=1" -j 40    every fold of every model a SLURM job
#   make bench           the speed benchmarks in bench/
#   make gpu-check       one table of what the CUDA path does on this machine's GPU (5-8 min)
#
# A GPU user installs a CUDA torch first and skips the CPU pin:  make install TORCH=

# A failing stage anywhere in a pipe fails the recipe.
SHELL        := /bin/bash
.SHELLFLAGS  := -eo pipefail -c

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
TORCH    ?= torch==2.13.0
# PyTorch's CPU wheel index: PyPI's Linux torch is the CUDA build (GBs). Empty = PyPI only.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
FERCLI   := $(BIN)/fercli
OUT      ?= out
STAMP    := $(VENV)/.fercli-installed

.PHONY: install demo test lint bench gpu-check clean chapter3 chapter4 chapter5
.DELETE_ON_ERROR:
# models and data reached through pattern rules are results, not temporary files: keep them
.SECONDARY:

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	# Pin the CPU torch wheel before resolving the rest (an unpinned torch is a CUDA build of several GB):
	# from PyTorch's CPU index, or, where that index is not reachable, PyPI's pin.
	$(if $(TORCH),$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet --retries 1 --timeout 20 --index-url $(TORCH_INDEX) "$(TORCH)" \
	  || { echo "make install: $(TORCH_INDEX) not reachable: $(TORCH) from PyPI"; $(BIN)/python -m pip install --quiet "$(TORCH)"; },\
	  $(BIN)/python -m pip install --quiet "$(TORCH)"))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -c "import fercli.faces as f; f.landmark_model_path()"
	touch $(STAMP)

test: install lint
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

# ruff with the small rule set of pyproject.toml (real mistakes, not style)
lint: install
	$(BIN)/ruff check fercli tests bench examples

# ----------------------------------------------------------------------------- file names
# Every output path says what made it, so a run with other variables builds new files and
# never relabels old ones:
#   $(OUT)/chN/<data set>-<id>/...         one folder per data set: its name and a short identity
#                                          (DATA: a hash of its real path and of every file's name,
#                                          size and mtime; synthetic data: a hash of the synth options)
#   .../<folds>-e<epochs>-<hash>/          one folder per run: folds and epochs readable, a hash of
#                                          every other variable that changes a model
#   .../<model>.h5, report-<model>.h5      models named by what they are (r3-from-r12-r8, cnn-both ...)
# The printed tables name their rows from the reports themselves (fercli.results), not from here.
empty    :=
space    := $(empty) $(empty)
,        := ,
sq       = '$(subst ','\'',$(1))'
hash8    = $(shell printf '%s' $(call sq,$(1)) | sha1sum | cut -c1-8)
# data_id PATH,VARIABLE: identity of a data set on disk (a folder or a file; an ingested .h5 too)
data_id  = $(if $(wildcard $(1)),$(shell { realpath $(call sq,$(wildcard $(1))); find -L $(call sq,$(wildcard $(1))) -printf '%P %s %T@\n' | LC_ALL=C sort; } | sha1sum | cut -c1-8),$(error $(2)=$(1) does not exist))
fold_tag  = $(if $(filter all,$(1)),all-folds,fold$(1))

# torch CPU threads per stage (1: the same numbers on any machine; `make -j` uses the cores)
THREADS  ?= 1
DEVICE   ?= auto
RUNTIME   = --threads $(THREADS) --device $(DEVICE)
# seed of every training (initialisation, batch order, augmentation, dropout)
SEED     ?= 0
# extra `fercli evaluate` options (the demo passes --no-latency)
EVAL_FLAGS ?=
TABLE     = $(BIN)/python examples/table.py

# ----------------------------------------------------------------------------- where recipes run
# LAUNCH=        (the default) every recipe runs here, as a process of make.
# LAUNCH=slurm   every training and evaluation recipe is a SLURM job of its own: `srun` blocks
#                until the job ends, so make's graph is the workflow (-j N: N jobs queued or
#                running at once) and each job's output comes back to make's; Ctrl-C to make
#                cancels the running jobs.  Data preparation, joins and tables stay here.
#                SLURM_ARGS="--gpus=1 -c 8 --mem=32G -p gpu -A proj -t 4:00:00": the site's
#                options, given to every job (nothing site-specific is written here).
#                Job names: fercli:<the target's path under OUT>.
# Training writes its checkpoint (every epoch, atomically) to <target>.ckpt.h5 and renames it
# to the target when it is done: a job that fails or is pre-empted leaves the checkpoint, and
# the next make continues it (--resume); make never mistakes a checkpoint for a finished model.
LAUNCH     ?=
SLURM_ARGS ?=
ifeq ($(LAUNCH),slurm)
job         = srun --job-name=fercli:$(patsubst $(OUT)/%,%,$@) --ntasks=1 --input=none --quit-on-interrupt --kill-on-bad-exit=1 $(SLURM_ARGS)$(space)
else ifneq ($(LAUNCH),)
$(error LAUNCH=$(LAUNCH): leave it empty (run here) or give LAUNCH=slurm)
endif
ckpt         = $(@:.h5=.ckpt.h5)
checkpointed = $(if $(wildcard $(ckpt)),--resume )-o $(ckpt) && mv -f $(ckpt) $@

# ----------------------------------------------------------------------------- demo
# Chapter 3's synthetic run on one held-out fold (Tables 3.1/3.2 rows), the four streams trained
# side by side (-j2), no latency measurement: the table is the same on every run and machine
# with the same package versions (one torch thread per stage, seeded, deterministic kernels).
DEMO_JOBS ?= 2
demo: install
	@echo "demo: chapter 3 on synthetic data, fold 0; $(DEMO_JOBS) stages at a time, each one's output shown when it ends"
	$(MAKE) --no-print-directory -j$(DEMO_JOBS) -O chapter3-main DATA= OUT=$(OUT)/demo CH3_FOLD=0 EVAL_FLAGS=--no-latency

# ----------------------------------------------------------------------------- chapter 3
# make chapter3 [DATA=~/data/CK+ DATASET=ckplus|oulu|video]  -> Tables 3.1/3.2 and 3.5's rows
DATASET   ?= ckplus
ifeq ($(DATA),)
# synthetic run: 12 subjects x 4 classes x 3 clips, 4 subject-independent folds, quarter-width
# trunks, dropout 0.3, batches of 8 and a cosine schedule (dropout 0.7 does not start learning on
# ~100 training clips, and a constant lr leaves BatchNorm statistics swinging); the SF/PD GRUs
# learn on the frozen static CNN (6 epochs of fine-tuning the whole CNN-GRU on ~100 clips lost
# 14-19 points on held-out subjects), the LBP-TOP streams train 12 epochs, the fusions 3
FOLDS     ?= 4
CH3_SYNTH ?= --subjects 12 --clips-per-class 3 --classes happy,sadness,surprise,anger --size 320x240 --seed 0
CH3_EPOCHS ?= 30
CH3_LBP_EPOCHS ?= 12
CH3_SEQ_EPOCHS ?= 6
CH3_FUSE_EPOCHS ?= 3
CH3_CNN   ?= --config width=0.25 --config dropout=0.3
CH3_GRU   ?= --config dropout=0.3 --freeze
CH3_FIT   ?= --batch-size 8 --schedule cosine
CH3_SET   := synth-$(call hash8,$(CH3_SYNTH))
else
CH3_SET    = $(DATASET)-$(call data_id,$(DATA),DATA)
endif
FOLDS     ?= 10
CH3_FOLD  ?= all
CH3_EPOCHS ?= 40
CH3_LBP_EPOCHS ?= $(CH3_EPOCHS)
CH3_SEQ_EPOCHS ?= $(CH3_EPOCHS)
CH3_FUSE_EPOCHS ?= $(CH3_SEQ_EPOCHS)
CH3_CNN   ?=
CH3_GRU   ?=
CH3_FIT   ?=
CH3_DIR   := $(OUT)/ch3/$(CH3_SET)
CH3_FOLDS := $(CH3_DIR)/folds-k$(FOLDS).h5
CH3_RUN   := $(CH3_DIR)/k$(FOLDS)-$(call fold_tag,$(CH3_FOLD))-e$(CH3_EPOCHS)-lbp$(CH3_LBP_EPOCHS)-seq$(CH3_SEQ_EPOCHS)-fuse$(CH3_FUSE_EPOCHS)-$(call hash8,$(CH3_CNN)|$(CH3_GRU)|$(CH3_FIT)|$(THREADS)|$(SEED))
# CH3_FOLD=all: every fold of every model is a target of its own, $(CH3_RUN)/fold<k>/<model>.h5
# (`train --fold k`: fold k's CNN-GRU starts from fold k's static CNN, fold k's fusion from fold
# k's streams), and `fercli merge` joins a model's folds into $(CH3_RUN)/<model>.h5 -- what
# `--folds all` writes, bit for bit on CPU -- which the reports and tables read.
# CH3_FOLD=k (the demo): the models of that one fold, trained in $(CH3_RUN) itself.
ifeq ($(CH3_FOLD),all)
CH3_FOLD_IDS := $(shell seq 0 $$(( $(FOLDS) - 1 )))
CH3_M     := $(CH3_RUN)/fold%
CH3_FOLDED = --fold $*
else
CH3_M     := $(CH3_RUN)
CH3_FOLDED = --fold $(CH3_FOLD)
endif
CH3_COMMON = $(CH3_FOLDED) $(CH3_FIT) $(RUNTIME) --seed $(SEED)
CH3_TRAIN  = --epochs $(CH3_EPOCHS) $(CH3_CNN) $(CH3_COMMON)
CH3_LBP    = --epochs $(CH3_LBP_EPOCHS) $(CH3_CNN) $(CH3_COMMON)
CH3_SEQ    = --epochs $(CH3_SEQ_EPOCHS) $(CH3_GRU) $(CH3_COMMON)
CH3_FUSE   = --epochs $(CH3_FUSE_EPOCHS) $(CH3_COMMON)

$(CH3_DIR)/raw.h5: | install
	mkdir -p $(@D)
ifeq ($(DATA),)
	$(FERCLI) synth $(CH3_SYNTH) -o $@
else
	$(FERCLI) ingest $(DATASET) $(DATA) -o $@
endif

# align -> 10 frames -> LBP-TOP XT/YT, as one pipe (thesis 3.2.2, 3.2.4, 3.3.1)
$(CH3_DIR)/planes.h5: $(CH3_DIR)/raw.h5
	$(FERCLI) align $< --size 64 -o - | $(FERCLI) resample -n 10 - -o - | $(FERCLI) lbptop - -o $@

$(CH3_FOLDS): $(CH3_DIR)/planes.h5
	$(FERCLI) split $< --folds $(FOLDS) --by subject -o $@

# streams (3.2.3, 3.2.4) and Table 3.5's max pooling in place of the GRU ($(@D): this fold's models)
$(CH3_M)/static.h5: $(CH3_FOLDS)
	mkdir -p $(@D)
	$(job)$(FERCLI) train plain-cnn $< $(CH3_TRAIN) $(checkpointed)
$(CH3_M)/gru-sf.h5: $(CH3_FOLDS) $(CH3_M)/static.h5
	$(job)$(FERCLI) train cnn-gru $< --init-from $(@D)/static.h5 --input features $(CH3_SEQ) $(checkpointed)
$(CH3_M)/gru-pd.h5: $(CH3_FOLDS) $(CH3_M)/static.h5
	$(job)$(FERCLI) train cnn-gru $< --init-from $(@D)/static.h5 --input probs $(CH3_SEQ) $(checkpointed)
$(CH3_M)/pool-sf.h5: $(CH3_FOLDS) $(CH3_M)/static.h5
	$(job)$(FERCLI) train cnn-gru $< --init-from $(@D)/static.h5 --input features --pool max $(CH3_SEQ) $(checkpointed)
$(CH3_M)/xt.h5: $(CH3_FOLDS)
	mkdir -p $(@D)
	$(job)$(FERCLI) train lbptop-gru $< --plane xt $(CH3_LBP) $(checkpointed)
$(CH3_M)/yt.h5: $(CH3_FOLDS)
	mkdir -p $(@D)
	$(job)$(FERCLI) train lbptop-gru $< --plane yt $(CH3_LBP) $(checkpointed)
# fusions (3.2.5) of the frozen streams, and 3.1 (4)'s averaged outputs (nothing trained)
$(CH3_M)/fusion-rgb.h5: $(CH3_FOLDS) $(CH3_M)/gru-sf.h5 $(CH3_M)/gru-pd.h5
	$(job)$(FERCLI) train multistream $< --streams $(@D)/gru-sf.h5,$(@D)/gru-pd.h5 $(CH3_FUSE) $(checkpointed)
$(CH3_M)/fusion-lbp.h5: $(CH3_FOLDS) $(CH3_M)/xt.h5 $(CH3_M)/yt.h5
	$(job)$(FERCLI) train multistream $< --streams $(@D)/xt.h5,$(@D)/yt.h5 $(CH3_FUSE) $(checkpointed)
CH3_STREAMS = $(@D)/gru-sf.h5,$(@D)/gru-pd.h5,$(@D)/xt.h5,$(@D)/yt.h5
$(CH3_M)/ms.h5: $(CH3_FOLDS) $(CH3_M)/gru-sf.h5 $(CH3_M)/gru-pd.h5 $(CH3_M)/xt.h5 $(CH3_M)/yt.h5
	$(job)$(FERCLI) train multistream $< --streams $(CH3_STREAMS) $(CH3_FUSE) $(checkpointed)
$(CH3_M)/ms-average.h5: $(CH3_FOLDS) $(CH3_M)/gru-sf.h5 $(CH3_M)/gru-pd.h5 $(CH3_M)/xt.h5 $(CH3_M)/yt.h5
	$(job)$(FERCLI) train multistream $< --streams $(CH3_STREAMS) --config fusion=average $(CH3_COMMON) --epochs 0 $(checkpointed)
ifeq ($(CH3_FOLD),all)
CH3_MODELS := static gru-sf gru-pd pool-sf xt yt fusion-rgb fusion-lbp ms ms-average
$(foreach m,$(CH3_MODELS),$(CH3_RUN)/$(m).h5): $(CH3_RUN)/%.h5: $(foreach k,$(CH3_FOLD_IDS),$(CH3_RUN)/fold$(k)/%.h5)
	$(FERCLI) merge $^ -o $@
endif

$(CH3_RUN)/report-%.h5: $(CH3_RUN)/%.h5 $(CH3_FOLDS)
	$(job)$(FERCLI) evaluate $< $(CH3_FOLDS) $(EVAL_FLAGS) $(RUNTIME) -o $@ --figure $(CH3_RUN)/confusion-$*.png > /dev/null

# Tables 3.1/3.2 (the captions are the thesis's letters; the row names come from the reports)
CH3_MAIN := static (a)=gru-sf (b)=gru-pd (c)=xt (d)=yt fusion-rgb fusion-lbp ms ms-average
# Table 3.5 (Inception-ResNet-v2 rows not reproduced)
CH3_T35  := static gru-pd gru-sf pool-sf
ch3_report = $(CH3_RUN)/report-$(lastword $(subst =, ,$(1))).h5
ch3_row    = $(if $(findstring =,$(1)),$(firstword $(subst =, ,$(1)))=)$(call ch3_report,$(1))

.PHONY: chapter3-main
chapter3-main: $(foreach r,$(CH3_MAIN),$(call ch3_report,$(r)))
	$(TABLE) --title "Tables 3.1/3.2 (this run)" $(foreach r,$(CH3_MAIN),"$(call ch3_row,$(r))") | tee $(CH3_RUN)/table.md

chapter3: chapter3-main $(foreach r,$(CH3_T35),$(call ch3_report,$(r)))
	$(TABLE) --title "Table 3.5 (this run): GRU vs max pooling" $(foreach r,$(CH3_T35),"$(call ch3_row,$(r))") | tee $(CH3_RUN)/table-3.5.md

# ----------------------------------------------------------------------------- chapter 4
# make chapter4 [DATA=~/data/CK+] [FER2013=fer2013.csv SFEW=~/data/SFEW_2.0 AFEW=~/data/AFEW]
#   -> Table 4.1 (static CNN: every net of CH4_NETS direct, identity pre-trained and, with
#      FER2013/SFEW, cross-database; one column per data set given), Table 4.2 (CNN-GRU vs
#      CNN-LSTM on probability sequences of 5 frames), Table 4.3 (aligned vs unaligned faces,
#      4.3.4), ONNX export and a headless run of the live system.
# The static CNN takes the first and last 3 frames of each whole sequence (4.3.1), the
# CNN-RNN the three 5-frame clips of each (4.2.7); 7 classes (neutral + six basic).
# FER2013/SFEW/AFEW may also name clips artifacts (.h5) of your own (SFEW's aligned to 96x96, the
# others as `fercli ingest` writes them); AFEW's CNN part
# is the SFEW-trained CNN (4.3.2: the static data set of the dynamic one), so AFEW needs SFEW.
# Identity pre-training (4.2.6): VGGFace cannot be fetched here, so stage 1 learns the identities
# of a separate synthetic population (other people than DATA's); point CH4_PRETRAIN at an aligned
# identity-labelled clips artifact (96x96) of your own for the real protocol.
CH4_SYNTH  ?= --subjects 12 --clips-per-class 3 --classes happy,sadness,surprise,anger --size 320x240 --seed 1
CH4_FACES_SYNTH ?= --subjects 12 --clips-per-class 1 --size 320x240 --seed 99
ifeq ($(DATA),)
# synthetic run: the small MobileNetV3 on 12 subjects x 4 expressions (+ neutral), 15 epochs of the
# first and last 3 frames of each sequence, batches of 16 with a cosine schedule; the GRU/LSTM learn
# on the frozen CNN's probabilities (fine-tuning the whole CNN-GRU on ~300 clips lost ~8 points on
# held-out subjects). CH4_NETS="mobilenet-v3-small mobilenet-v2" adds Table 4.1's MobileNetV2 rows.
CH4_NET    ?= mobilenet-v3-small
CH4_NETS   ?= $(CH4_NET)
CH4_EPOCHS ?= 15
CH4_ID_EPOCHS ?= 3
CH4_SEQ_EPOCHS ?= 10
CH4_FOLDS  ?= 4
CH4_FOLD   ?= 0
CH4_BATCH  ?= --batch-size 16 --schedule cosine
CH4_SEQ    ?= --freeze
CH4_SET    := synth-$(call hash8,$(CH4_SYNTH))
else
CH4_NET    ?= mobilenet-v3
CH4_SET     = $(DATASET)-$(call data_id,$(DATA),DATA)
endif
# Table 4.1's CNNs; the first is the CNN part of Tables 4.2/4.3
CH4_NETS   ?= $(CH4_NET) mobilenet-v2
CH4_EPOCHS ?= 30
CH4_ID_EPOCHS ?= $(CH4_EPOCHS)
CH4_SEQ_EPOCHS ?= $(CH4_EPOCHS)
CH4_FOLDS  ?= 10
CH4_FOLD   ?= all
CH4_CNN    ?=
CH4_BATCH  ?=
CH4_SEQ    ?=
CH4_PRETRAIN ?=
CH4_DIR    := $(OUT)/ch4/$(CH4_SET)-k$(CH4_FOLDS)
ifeq ($(CH4_PRETRAIN),)
CH4_FACES_DIR := $(OUT)/ch4/faces-synth-$(call hash8,$(CH4_FACES_SYNTH))
CH4_FACES  := $(CH4_FACES_DIR)/faces.h5
else
CH4_FACES_DIR := $(OUT)/ch4/faces-$(call data_id,$(CH4_PRETRAIN),CH4_PRETRAIN)
CH4_FACES  := $(CH4_PRETRAIN)
endif
CH4_FIT     = $(CH4_BATCH) $(RUNTIME) --seed $(SEED)
CH4_ID_TAG := e$(CH4_ID_EPOCHS)-$(call hash8,$(CH4_CNN)|$(CH4_BATCH)|$(THREADS)|$(SEED))
ch4_identity = $(CH4_FACES_DIR)/identity-$(1)-$(CH4_ID_TAG).h5
CH4_RUN    := $(CH4_DIR)/$(call fold_tag,$(CH4_FOLD))-e$(CH4_EPOCHS)-$(CH4_SEQ_EPOCHS)-$(call hash8,$(CH4_CNN)|$(CH4_BATCH)|$(CH4_SEQ)|$(THREADS)|$(SEED)|$(CH4_FACES_DIR)|$(CH4_ID_TAG))
CH4_STATIC  = --frame first-last --epochs $(CH4_EPOCHS) $(CH4_CNN)
CH4_RNN     = --input probs --frames 5 --config fc=0 --epochs $(CH4_SEQ_EPOCHS) $(CH4_SEQ)
# a data set without folds trains by its official split (FER2013 Training/PublicTest/PrivateTest, SFEW/AFEW Train/Val)
CH4_OFFICIAL = $(CH4_FIT)

$(CH4_DIR)/raw.h5: | install
	mkdir -p $(@D)
ifeq ($(DATA),)
	$(FERCLI) synth $(CH4_SYNTH) -o - | $(FERCLI) split - --folds $(CH4_FOLDS) --by subject -o $@
else
	$(FERCLI) ingest $(DATASET) $(DATA) -o - | $(FERCLI) split - --folds $(CH4_FOLDS) --by subject -o $@
endif
$(CH4_DIR)/aligned.h5: $(CH4_DIR)/raw.h5
	$(FERCLI) align $< --size 96 -o $@
$(CH4_DIR)/unaligned.h5: $(CH4_DIR)/raw.h5
	$(FERCLI) align $< --size 96 --no-align -o $@
# 4.2.7: neutral->peak, neutral->neutral and peak->peak clips of 5 frames
$(CH4_DIR)/seq-%.h5: $(CH4_DIR)/%.h5
	$(FERCLI) resample $< --ckplus-split -n 5 -o $@
ifeq ($(CH4_PRETRAIN),)
# identity pre-training must not share an origin with DATA, or every fold is refused as a leak
$(CH4_FACES): | install
	mkdir -p $(@D)
	$(FERCLI) synth $(CH4_FACES_SYNTH) -o - | $(FERCLI) align - --size 96 -o $@
endif
$(call ch4_identity,%): $(CH4_FACES)
	mkdir -p $(@D)
	$(job)$(FERCLI) train $* $< --task identity --frame all --epochs $(CH4_ID_EPOCHS) $(CH4_CNN) $(CH4_FIT) $(checkpointed)

# The models of one fold, trained in folder $(1) with $(2) (--fold k): Table 4.1 on DATA (direct,
# identity pre-trained, and cross-database when FER2013/SFEW are given), Table 4.2's GRU / LSTM on
# the identity pre-trained CNN's probability sequences (4.2.4.3), Table 4.3 / Fig 4.2's models trained
# on aligned + unaligned faces; every second stage starts from the same fold's first-stage model.
define CH4_FOLD_MODELS
$(1)/%-direct.h5: $$(CH4_DIR)/aligned.h5
	mkdir -p $$(@D)
	$$(job)$$(FERCLI) train $$* $$< $$(CH4_STATIC) $(2) $$(CH4_FIT) $$(checkpointed)
$(1)/%-pretrained.h5: $$(CH4_DIR)/aligned.h5 $$(call ch4_identity,%)
	mkdir -p $$(@D)
	$$(job)$$(FERCLI) train $$* $$< --init-from $$(call ch4_identity,$$*) $$(CH4_STATIC) $(2) $$(CH4_FIT) $$(checkpointed)
$(1)/%-both.h5: $$(CH4_DIR)/aligned.h5 $$(CH4_DIR)/unaligned.h5 $$(call ch4_identity,%)
	mkdir -p $$(@D)
	$$(job)$$(FERCLI) train $$* $$(CH4_DIR)/aligned.h5 $$(CH4_DIR)/unaligned.h5 --init-from $$(call ch4_identity,$$*) $$(CH4_STATIC) $(2) $$(CH4_FIT) $$(checkpointed)
$(1)/%-gru.h5: $$(CH4_DIR)/seq-aligned.h5 $(1)/%-pretrained.h5
	$$(job)$$(FERCLI) train cnn-gru $$< --init-from $(1)/$$*-pretrained.h5 $$(CH4_RNN) $(2) $$(CH4_FIT) $$(checkpointed)
$(1)/%-lstm.h5: $$(CH4_DIR)/seq-aligned.h5 $(1)/%-pretrained.h5
	$$(job)$$(FERCLI) train cnn-gru $$< --init-from $(1)/$$*-pretrained.h5 --rnn lstm $$(CH4_RNN) $(2) $$(CH4_FIT) $$(checkpointed)
$(1)/%-gru-both.h5: $$(CH4_DIR)/seq-aligned.h5 $$(CH4_DIR)/seq-unaligned.h5 $(1)/%-both.h5
	$$(job)$$(FERCLI) train cnn-gru $$(CH4_DIR)/seq-aligned.h5 $$(CH4_DIR)/seq-unaligned.h5 --init-from $(1)/$$*-both.h5 $$(CH4_RNN) $(2) $$(CH4_FIT) $$(checkpointed)
ifneq ($$(CH4_CROSS),)
$(1)/%-$$(CH4_CROSS).h5: $$(CH4_DIR)/aligned.h5 $$(CH4_CROSS_DATA) $$(call ch4_identity,%)
	mkdir -p $$(@D)
	$$(job)$$(FERCLI) train $$* $$(CH4_DIR)/aligned.h5 $$(CH4_CROSS_DATA) --init-from $$(call ch4_identity,$$*) --size 96 $$(CH4_STATIC) $(2) $$(CH4_FIT) $$(checkpointed)
endif
endef

# reports: report-MODEL-on-DATA.h5 (DATA: a clips artifact of this data set's folder)
$(CH4_RUN)/report-%-on-aligned.h5: $(CH4_RUN)/%.h5 $(CH4_DIR)/aligned.h5
	$(job)$(FERCLI) evaluate $< $(CH4_DIR)/aligned.h5 $(EVAL_FLAGS) $(RUNTIME) -o $@ --figure $(@:.h5=.png) > /dev/null
$(CH4_RUN)/report-%-on-seq-aligned.h5: $(CH4_RUN)/%.h5 $(CH4_DIR)/seq-aligned.h5
	$(job)$(FERCLI) evaluate $< $(CH4_DIR)/seq-aligned.h5 $(EVAL_FLAGS) $(RUNTIME) -o $@ --figure $(@:.h5=.png) > /dev/null
$(CH4_RUN)/report-%-on-seq-unaligned.h5: $(CH4_RUN)/%.h5 $(CH4_DIR)/seq-unaligned.h5
	$(job)$(FERCLI) evaluate $< $(CH4_DIR)/seq-unaligned.h5 $(EVAL_FLAGS) $(RUNTIME) -o $@ --figure $(@:.h5=.png) > /dev/null

# ONNX export (the CNN and GRU parts, 4.2.7) and the live system on a rendered video
$(CH4_RUN)/live-cnn.onnx $(CH4_RUN)/live-gru.onnx &: $(CH4_RUN)/$(CH4_NET)-gru.h5
	$(FERCLI) export $< --onnx $(CH4_RUN)/live.onnx --split
$(CH4_RUN)/live.jsonl: $(CH4_RUN)/$(CH4_NET)-gru-both.h5
	$(FERCLI) synth --subjects 2 --clips-per-class 1 --size 640x360 --seed 7 --video $(CH4_RUN)/live-input.mp4 -o $(CH4_RUN)/live-input.h5
	$(FERCLI) live $< --source $(CH4_RUN)/live-input.mp4 --headless > $@

# --- the other data sets of Tables 4.1/4.2 (a column each, when given)
# ch4_extra NAME,PATH: $(OUT)/ch4/NAME-<id>/ with clips.h5 (ingested, or the .h5 given) and a run folder
ch4_set_dir = $(OUT)/ch4/$(1)-$(call data_id,$(2),$(3))
CH4_X_TAG  := e$(CH4_EPOCHS)-$(CH4_SEQ_EPOCHS)-$(call hash8,$(CH4_CNN)|$(CH4_BATCH)|$(CH4_SEQ)|$(THREADS)|$(SEED)|$(CH4_FACES_DIR)|$(CH4_ID_TAG))
CH4_T41    := $(foreach n,$(CH4_NETS),$(CH4_RUN)/report-$(n)-direct-on-aligned.h5 $(CH4_RUN)/report-$(n)-pretrained-on-aligned.h5)
CH4_T42    := $(CH4_RUN)/report-$(CH4_NET)-lstm-on-seq-aligned.h5 $(CH4_RUN)/report-$(CH4_NET)-gru-on-seq-aligned.h5
CH4_T43    := $(CH4_RUN)/report-$(CH4_NET)-gru-on-seq-aligned.h5 $(CH4_RUN)/report-$(CH4_NET)-gru-on-seq-unaligned.h5 \
              $(CH4_RUN)/report-$(CH4_NET)-gru-both-on-seq-unaligned.h5
CH4_CROSS_DATA :=
CH4_CROSS_TAG  :=

# CH4_STATIC_DATA NAME,VAR,MAKE-CLIPS: a static data set of Table 4.1 given as VAR=PATH: its clips
# (ingested, or the .h5 given), its single-database models (official split, 96x96 like CK+'s) and
# its column; it also joins the cross-database training
define CH4_STATIC_DATA
$(2)_DIR := $$(call ch4_set_dir,$(1),$$($(2)),$(2))
$(2)_RUN := $$($(2)_DIR)/$$(CH4_X_TAG)
CH4_CROSS_DATA += $$($(2)_DIR)/clips.h5
CH4_CROSS_TAG  += $$(notdir $$($(2)_DIR))
CH4_T41 += $$(foreach n,$$(CH4_NETS),$$($(2)_RUN)/report-$$(n)-direct-on-$(1).h5 $$($(2)_RUN)/report-$$(n)-pretrained-on-$(1).h5)
$$($(2)_DIR)/clips.h5: | install
	mkdir -p $$(@D)
	$$(if $$(filter %.h5,$$($(2))),cp $$($(2)) $$@,$(3))
$$($(2)_RUN)/%-direct.h5: $$($(2)_DIR)/clips.h5
	mkdir -p $$(@D)
	$$(job)$$(FERCLI) train $$* $$< --size 96 --epochs $$(CH4_EPOCHS) $$(CH4_CNN) $$(CH4_OFFICIAL) $$(checkpointed)
$$($(2)_RUN)/%-pretrained.h5: $$($(2)_DIR)/clips.h5 $$(call ch4_identity,%)
	mkdir -p $$(@D)
	$$(job)$$(FERCLI) train $$* $$< --size 96 --init-from $$(call ch4_identity,$$*) --epochs $$(CH4_EPOCHS) $$(CH4_CNN) $$(CH4_OFFICIAL) $$(checkpointed)
$$($(2)_RUN)/report-%-on-$(1).h5: $$($(2)_RUN)/%.h5 $$($(2)_DIR)/clips.h5
	$$(job)$$(FERCLI) evaluate $$< $$($(2)_DIR)/clips.h5 $$(EVAL_FLAGS) $$(RUNTIME) -o $$@ --figure $$(@:.h5=.png) > /dev/null
$$(CH4_RUN)/report-%-on-$(1).h5: $$(CH4_RUN)/%.h5 $$($(2)_DIR)/clips.h5
	$$(job)$$(FERCLI) evaluate $$< $$($(2)_DIR)/clips.h5 $$(EVAL_FLAGS) $$(RUNTIME) -o $$@ > /dev/null
endef
$(if $(FER2013),$(eval $(call CH4_STATIC_DATA,fer2013,FER2013,$$(FERCLI) ingest fer2013 $$(FER2013) -o $$@)))
$(if $(SFEW),$(eval $(call CH4_STATIC_DATA,sfew,SFEW,$$(FERCLI) ingest sfew $$(SFEW) --partition Train$$(,)Val -o - | $$(FERCLI) align - --size 96 -o $$@)))

ifneq ($(AFEW),)
ifeq ($(SFEW),)
$(error AFEW=... needs SFEW=...: AFEW's CNN part is the SFEW-trained CNN (4.3.2))
endif
AFEW_DIR   := $(call ch4_set_dir,afew,$(AFEW),AFEW)
AFEW_RUN   := $(AFEW_DIR)/$(CH4_X_TAG)
$(AFEW_DIR)/raw.h5: | install
	mkdir -p $(@D)
	$(if $(filter %.h5,$(AFEW)),cp $(AFEW) $@,$(FERCLI) ingest afew $(AFEW) --partition Train$(,)Val -o $@)
$(AFEW_DIR)/aligned.h5: $(AFEW_DIR)/raw.h5
	$(FERCLI) align $< --size 96 -o - | $(FERCLI) resample -n 5 - -o $@
$(AFEW_DIR)/unaligned.h5: $(AFEW_DIR)/raw.h5
	$(FERCLI) align $< --size 96 --no-align -o - | $(FERCLI) resample -n 5 - -o $@
$(AFEW_RUN)/%-gru.h5: $(AFEW_DIR)/aligned.h5 $(SFEW_RUN)/%-pretrained.h5
	mkdir -p $(@D)
	$(job)$(FERCLI) train cnn-gru $< --init-from $(SFEW_RUN)/$*-pretrained.h5 $(CH4_RNN) $(CH4_OFFICIAL) $(checkpointed)
$(AFEW_RUN)/%-lstm.h5: $(AFEW_DIR)/aligned.h5 $(SFEW_RUN)/%-pretrained.h5
	mkdir -p $(@D)
	$(job)$(FERCLI) train cnn-gru $< --init-from $(SFEW_RUN)/$*-pretrained.h5 --rnn lstm $(CH4_RNN) $(CH4_OFFICIAL) $(checkpointed)
$(AFEW_RUN)/%-gru-both.h5: $(AFEW_DIR)/aligned.h5 $(AFEW_DIR)/unaligned.h5 $(SFEW_RUN)/%-pretrained.h5
	mkdir -p $(@D)
	$(job)$(FERCLI) train cnn-gru $(AFEW_DIR)/aligned.h5 $(AFEW_DIR)/unaligned.h5 --init-from $(SFEW_RUN)/$*-pretrained.h5 $(CH4_RNN) $(CH4_OFFICIAL) $(checkpointed)
$(AFEW_RUN)/report-%-on-aligned.h5: $(AFEW_RUN)/%.h5 $(AFEW_DIR)/aligned.h5
	$(job)$(FERCLI) evaluate $< $(AFEW_DIR)/aligned.h5 $(EVAL_FLAGS) $(RUNTIME) -o $@ > /dev/null
$(AFEW_RUN)/report-%-on-unaligned.h5: $(AFEW_RUN)/%.h5 $(AFEW_DIR)/unaligned.h5
	$(job)$(FERCLI) evaluate $< $(AFEW_DIR)/unaligned.h5 $(EVAL_FLAGS) $(RUNTIME) -o $@ > /dev/null
CH4_T42 += $(AFEW_RUN)/report-$(CH4_NET)-lstm-on-aligned.h5 $(AFEW_RUN)/report-$(CH4_NET)-gru-on-aligned.h5
CH4_T43 += $(AFEW_RUN)/report-$(CH4_NET)-gru-on-aligned.h5 $(AFEW_RUN)/report-$(CH4_NET)-gru-on-unaligned.h5 \
           $(AFEW_RUN)/report-$(CH4_NET)-gru-both-on-unaligned.h5
endif

# Table 4.1's cross-database rows (4.3.2): CK+ with FER2013 and/or SFEW, tested on each
ifneq ($(strip $(CH4_CROSS_DATA)),)
CH4_CROSS  := cross-$(subst $(space),+,$(strip $(CH4_CROSS_TAG)))
CH4_T41 += $(foreach n,$(CH4_NETS),$(CH4_RUN)/report-$(n)-$(CH4_CROSS)-on-aligned.h5 \
             $(if $(FER2013),$(CH4_RUN)/report-$(n)-$(CH4_CROSS)-on-fer2013.h5) $(if $(SFEW),$(CH4_RUN)/report-$(n)-$(CH4_CROSS)-on-sfew.h5))
endif

# CH4_FOLD=all: every fold of every model on DATA is a target of its own, $(CH4_RUN)/fold<k>/<model>.h5
# (one SLURM job each with LAUNCH=slurm), and `fercli merge` joins a model's folds into
# $(CH4_RUN)/<model>.h5 -- what `--folds all` writes, bit for bit on CPU -- which the reports, the
# export and the tables read.  CH4_FOLD=k (the synthetic run): that fold's models in $(CH4_RUN) itself.
# The identity pre-training and the official-split models (FER2013, SFEW, AFEW) have no folds: one job each.
ifeq ($(CH4_FOLD),all)
CH4_FOLD_IDS := $(shell seq 0 $$(( $(CH4_FOLDS) - 1 )))
$(foreach k,$(CH4_FOLD_IDS),$(eval $(call CH4_FOLD_MODELS,$(CH4_RUN)/fold$(k),--fold $(k))))
CH4_JOINED := $(foreach n,$(CH4_NETS),$(foreach m,direct pretrained both gru lstm gru-both $(CH4_CROSS),$(CH4_RUN)/$(n)-$(m).h5))
$(CH4_JOINED): $(CH4_RUN)/%.h5: $(foreach k,$(CH4_FOLD_IDS),$(CH4_RUN)/fold$(k)/%.h5)
	$(FERCLI) merge $^ -o $@
else
$(eval $(call CH4_FOLD_MODELS,$(CH4_RUN),--fold $(CH4_FOLD)))
endif

chapter4: $(CH4_T41) $(CH4_T42) $(CH4_T43) $(CH4_RUN)/live-cnn.onnx $(CH4_RUN)/live.jsonl
	{ $(TABLE) --by-data --title "Table 4.1 (this run): static CNN" $(CH4_T41); echo; \
	  $(TABLE) --by-data --title "Table 4.2 (this run): CNN-RNN" $(CH4_T42); echo; \
	  $(TABLE) --by-data --title "Table 4.3 (this run): aligned vs unaligned faces" $(CH4_T43); } | tee $(CH4_RUN)/table.md

# ----------------------------------------------------------------------------- chapter 5
# make chapter5 [DATA=~/data/cifar-10-batches-bin]  -> Tables 5.2/5.3 (CIFAR-10) rows:
# a large-r LB-MBNet, SE-weight pruning to a small r, rebuild, retrain, vs small r from scratch,
# the small r with a learned depthwise conv in place of the LBC (5.3.2), and Fig 5.4 (a)-(c).
# With CH5_DATASET=fer2013 DATA=fer2013.csv CH5_SIZE=48 CH5_LARGE=100 CH5_SMALL=3: Tables 5.5/5.6.
CH5_DATASET ?= cifar10
CH5_SIZE    ?= 32
CH5_SYNTH   ?= --subjects 12 --clips-per-class 3 --classes happy,sadness,surprise,anger --size 320x240 --color --seed 2
ifeq ($(DATA),)
# synthetic smoke run: LB-MBNet-32 with quarter channel widths, r12 -> r3, few epochs
CH5_DEPTH   ?= 32
CH5_LARGE   ?= 12
CH5_SMALL   ?= 3
CH5_EPOCHS  ?= 40
CH5_MODEL   ?= --config 'channels=[16,8,16,32,64,128]' --batch-size 32
CH5_SPLIT   ?= --fold 0
CH5_SET     := synth-$(call hash8,$(CH5_SYNTH)|$(CH5_SIZE))
else
CH5_SET      = $(CH5_DATASET)-$(call data_id,$(DATA),DATA)
endif
CH5_DEPTH   ?= 59
CH5_LARGE   ?= 80
CH5_SMALL   ?= 6
CH5_EPOCHS  ?= 200
CH5_MODEL   ?=
CH5_SPLIT   ?=
# Segmented pruning (5.3.2): CH5_SEGMENTS="40 20 10" prunes r$(CH5_LARGE) -> r40, rebuilds and
# retrains it, prunes that to r20, ... and finally to r$(CH5_SMALL); each step is a row of
# Table 5.3 (the one-shot r$(CH5_LARGE) -> r$(CH5_SMALL) row is always there).
CH5_SEGMENTS ?=
CH5_SEG_EPOCHS ?= $(CH5_EPOCHS)
CH5_DIR     := $(OUT)/ch5/$(CH5_SET)
CH5_DATA    := $(CH5_DIR)/data.h5
CH5_RUN     := $(CH5_DIR)/d$(CH5_DEPTH)-$(if $(CH5_SPLIT),$(subst $(space),,$(subst --,,$(CH5_SPLIT))),official)-e$(CH5_EPOCHS)-$(CH5_SEG_EPOCHS)-$(call hash8,$(CH5_MODEL)|$(CH5_SIZE)|$(THREADS)|$(SEED))
ch5_train    = --depth $(CH5_DEPTH) --epochs $(1) --size $(CH5_SIZE) $(CH5_MODEL) $(CH5_SPLIT) $(RUNTIME) --seed $(SEED)
CH5_PRUNE    = $(CH5_SPLIT) $(RUNTIME)

$(CH5_DATA): | install
	mkdir -p $(@D)
ifeq ($(DATA),)
	$(FERCLI) synth $(CH5_SYNTH) -o - | $(FERCLI) align - --size $(CH5_SIZE) --color -o - | $(FERCLI) split - --folds 4 --by subject -o $@
else
	$(FERCLI) ingest $(CH5_DATASET) $(DATA) -o $@
endif
# rR.h5: LB-MBNet-depth-rR from scratch; rR-learned-dw.h5: the same with learned depthwise convs
$(CH5_RUN)/r$(CH5_SMALL).h5 $(CH5_RUN)/r$(CH5_LARGE).h5: $(CH5_RUN)/r%.h5: $(CH5_DATA)
	mkdir -p $(@D)
	$(job)$(FERCLI) train lb-mbnet $< --expansion $* $(call ch5_train,$(CH5_EPOCHS)) $(checkpointed)
$(CH5_RUN)/r$(CH5_SMALL)-learned-dw.h5: $(CH5_DATA)
	mkdir -p $(@D)
	$(job)$(FERCLI) train lb-mbnet $< --expansion $(CH5_SMALL) --config depthwise=learned $(call ch5_train,$(CH5_EPOCHS)) $(checkpointed)
# One pruning step: the model $(1).h5 pruned to r$(2), rebuilt, retrained for $(4) epochs as $(3).h5
# (named by its history: r6-from-r80 one shot, r6-from-r80-r40-r20 segmented); the SE-weight
# histograms of $(1) with the cut are se-$(1)-to-r$(2).png (Fig 5.4 (b) for the large model)
define CH5_STEP
$(CH5_RUN)/prune-$(3).h5 $(CH5_RUN)/se-$(1)-to-r$(2).png &: $(CH5_RUN)/$(1).h5 $(CH5_DATA)
	$$(job)$$(FERCLI) prune $(CH5_RUN)/$(1).h5 $(CH5_DATA) --expansion $(2) --plot $(CH5_RUN)/se-$(1)-to-r$(2).png $(CH5_PRUNE) -o $(CH5_RUN)/prune-$(3).h5
$(CH5_RUN)/rebuilt-$(3).h5: $(CH5_RUN)/prune-$(3).h5
	$$(FERCLI) rebuild $$< -o $$@
$(CH5_RUN)/$(3).h5: $(CH5_DATA) $(CH5_RUN)/rebuilt-$(3).h5
	$$(job)$$(FERCLI) train lb-mbnet $$< --init-from $(CH5_RUN)/rebuilt-$(3).h5 --expansion $(2) $(call ch5_train,$(4)) $$(checkpointed)
endef
# ratios of the segmented chain and the model after each step
CH5_CHAIN   := $(CH5_LARGE) $(CH5_SEGMENTS) $(CH5_SMALL)
ch5_after    = r$(word $(1),$(CH5_CHAIN))-from-$(subst $(space),-,$(addprefix r,$(wordlist 1,$(shell expr $(1) - 1),$(CH5_CHAIN))))
ch5_model    = $(if $(filter 1,$(1)),r$(CH5_LARGE),$(call ch5_after,$(1)))
CH5_STEPS   := $(shell seq 2 $(words $(CH5_CHAIN)))
CH5_ONESHOT := r$(CH5_SMALL)-from-r$(CH5_LARGE)
$(eval $(call CH5_STEP,r$(CH5_LARGE),$(CH5_SMALL),$(CH5_ONESHOT),$(CH5_EPOCHS)))
ifneq ($(strip $(CH5_SEGMENTS)),)
$(foreach i,$(CH5_STEPS),$(eval $(call CH5_STEP,$(call ch5_model,$(shell expr $(i) - 1)),$(word $(i),$(CH5_CHAIN)),$(call ch5_model,$(i)),$(if $(filter $(words $(CH5_CHAIN)),$(i)),$(CH5_EPOCHS),$(CH5_SEG_EPOCHS)))))
CH5_SEGMENTED := $(foreach i,$(CH5_STEPS),$(call ch5_model,$(i)))
endif
# Fig 5.4 (a) and (c): SE-weight histograms of the small model from scratch and of the rebuilt
# one (a statistics pass that keeps every kernel: --expansion at the model's own ratio)
$(CH5_RUN)/se-%.png: $(CH5_RUN)/%.h5 $(CH5_DATA)
	$(job)$(FERCLI) prune $^ --expansion $(CH5_SMALL) --plot $@ $(CH5_PRUNE) -o $(CH5_RUN)/se-stats-$*.h5
CH5_FIGS    := $(CH5_RUN)/se-r$(CH5_SMALL).png $(CH5_RUN)/se-r$(CH5_LARGE)-to-r$(CH5_SMALL).png $(CH5_RUN)/se-$(CH5_ONESHOT).png

$(CH5_RUN)/report-%.h5: $(CH5_RUN)/%.h5 $(CH5_DATA)
	$(job)$(FERCLI) evaluate $< $(CH5_DATA) $(EVAL_FLAGS) $(RUNTIME) -o $@ > /dev/null

CH5_ROWS := r$(CH5_SMALL) r$(CH5_SMALL)-learned-dw r$(CH5_LARGE) $(CH5_ONESHOT) $(CH5_SEGMENTED)
chapter5: $(foreach r,$(CH5_ROWS),$(CH5_RUN)/report-$(r).h5) $(CH5_FIGS)
	$(TABLE) --epochs --title "Tables 5.2/5.3 (this run)" $(foreach r,$(CH5_ROWS),$(CH5_RUN)/report-$(r).h5) | tee $(CH5_RUN)/table.md
	@echo "Fig 5.4: (a) $(word 1,$(CH5_FIGS))  (b) $(word 2,$(CH5_FIGS))  (c) $(word 3,$(CH5_FIGS))"

bench: install
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# One GPU, one command (a CUDA torch first: make install TORCH=): engine vs bare loop and
# --compile img/s per model, chapter 5 on CUDA, resume, DDP/NCCL, evaluate, live -- a table.
gpu-check: install
	$(BIN)/python bench/gpu_check.py --require-gpu

clean:
	rm -rf $(OUT)

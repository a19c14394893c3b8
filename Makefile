# fercli — every target installs what it needs first (`make install` is a no-op once done).
#
#   make demo            the main job on embedded synthetic data
#   make test            the whole test suite
#   make chapter3|4|5    reproduce a thesis chapter (DATA=... for a real dataset)
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

.PHONY: install demo test bench gpu-check clean chapter3 chapter4 chapter5
.DELETE_ON_ERROR:

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

test: install
	$(BIN)/python -m pytest -q

# ----------------------------------------------------------------------------- demo
# The main job on embedded data: chapter 3's synthetic run (below) on one held-out fold.
demo: install
	$(MAKE) --no-print-directory chapter3 DATA= OUT=$(OUT)/demo CH3_FOLD="--fold 0"
	$(FERCLI) info $(OUT)/demo/ch3/ms.h5

# ----------------------------------------------------------------------------- chapter 3
# make chapter3 [DATA=~/data/CK+ DATASET=ckplus|oulu|video]  -> Tables 3.1/3.2 rows
DATASET   ?= ckplus
CH3       := $(OUT)/ch3
ifeq ($(DATA),)
# synthetic run: 12 subjects x 4 classes x 3 clips, 4 subject-independent folds, quarter-width
# trunks, dropout 0.3, batches of 8 and a cosine schedule (dropout 0.7 does not start learning on
# ~100 training clips, and a constant lr leaves BatchNorm statistics swinging); ~10 CPU minutes per fold
FOLDS     ?= 4
CH3_SYNTH ?= --subjects 12 --clips-per-class 3 --classes happy,sadness,surprise,anger --size 320x240 --seed 0
CH3_EPOCHS ?= 30
CH3_SEQ_EPOCHS ?= 6
CH3_CNN   ?= --config width=0.25 --config dropout=0.3
CH3_GRU   ?= --config dropout=0.3
CH3_FIT   ?= --batch-size 8 --schedule cosine
endif
FOLDS     ?= 10
CH3_EPOCHS ?= 40
CH3_SEQ_EPOCHS ?= $(CH3_EPOCHS)
CH3_FOLD  ?= --folds all
CH3_CNN   ?=
CH3_GRU   ?=
CH3_FIT   ?=
CH3_TRAIN  = --epochs $(CH3_EPOCHS) $(CH3_FOLD) $(CH3_CNN) $(CH3_FIT)
CH3_SEQ    = --epochs $(CH3_SEQ_EPOCHS) $(CH3_FOLD) $(CH3_GRU) $(CH3_FIT)
CH3_FUSE   = --epochs $(CH3_SEQ_EPOCHS) $(CH3_FOLD) $(CH3_FIT)

$(CH3)/raw.h5: | install
	mkdir -p $(CH3)
ifeq ($(DATA),)
	$(FERCLI) synth $(CH3_SYNTH) -o $@
else
	$(FERCLI) ingest $(DATASET) $(DATA) -o $@
endif

# align -> 10 frames -> LBP-TOP XT/YT, as one pipe (thesis 3.2.2, 3.2.4, 3.3.1)
$(CH3)/planes.h5: $(CH3)/raw.h5
	$(FERCLI) align $< --size 64 -o - | $(FERCLI) resample -n 10 - -o - | $(FERCLI) lbptop - -o $@

$(CH3)/folds.h5: $(CH3)/planes.h5
	$(FERCLI) split $< --folds $(FOLDS) --by subject -o $@

$(CH3)/static.h5: $(CH3)/folds.h5
	$(FERCLI) train plain-cnn $< $(CH3_TRAIN) -o $@
$(CH3)/gru-sf.h5: $(CH3)/folds.h5 $(CH3)/static.h5
	$(FERCLI) train cnn-gru $< --init-from $(CH3)/static.h5 --input features $(CH3_SEQ) -o $@
$(CH3)/gru-pd.h5: $(CH3)/folds.h5 $(CH3)/static.h5
	$(FERCLI) train cnn-gru $< --init-from $(CH3)/static.h5 --input probs $(CH3_SEQ) -o $@
$(CH3)/xt.h5: $(CH3)/folds.h5
	$(FERCLI) train lbptop-gru $< --plane xt $(CH3_TRAIN) -o $@
$(CH3)/yt.h5: $(CH3)/folds.h5
	$(FERCLI) train lbptop-gru $< --plane yt $(CH3_TRAIN) -o $@
$(CH3)/fusion-rgb.h5: $(CH3)/folds.h5 $(CH3)/gru-sf.h5 $(CH3)/gru-pd.h5
	$(FERCLI) train multistream $< --streams $(CH3)/gru-sf.h5,$(CH3)/gru-pd.h5 $(CH3_FUSE) -o $@
$(CH3)/fusion-lbp.h5: $(CH3)/folds.h5 $(CH3)/xt.h5 $(CH3)/yt.h5
	$(FERCLI) train multistream $< --streams $(CH3)/xt.h5,$(CH3)/yt.h5 $(CH3_FUSE) -o $@
$(CH3)/ms.h5: $(CH3)/folds.h5 $(CH3)/gru-sf.h5 $(CH3)/gru-pd.h5 $(CH3)/xt.h5 $(CH3)/yt.h5
	$(FERCLI) train multistream $< --streams $(CH3)/gru-sf.h5,$(CH3)/gru-pd.h5,$(CH3)/xt.h5,$(CH3)/yt.h5 $(CH3_FUSE) -o $@

CH3_ROWS := static gru-sf gru-pd xt yt fusion-rgb fusion-lbp ms
$(CH3)/report-%.h5: $(CH3)/%.h5 $(CH3)/folds.h5
	$(FERCLI) evaluate $< $(CH3)/folds.h5 -o $@ --figure $(CH3)/confusion-$*.png > /dev/null

chapter3: $(foreach r,$(CH3_ROWS),$(CH3)/report-$(r).h5)
	$(BIN)/python examples/table.py --title "Table 3.1/3.2 (this run)" \
	    "Static Plain CNN=$(CH3)/report-static.h5" \
	    "(a) CNN + GRU with SF sequence=$(CH3)/report-gru-sf.h5" \
	    "(b) CNN + GRU with PD sequence=$(CH3)/report-gru-pd.h5" \
	    "(c) CNN + GRU with LBP-TOP XT=$(CH3)/report-xt.h5" \
	    "(d) CNN + GRU with LBP-TOP YT=$(CH3)/report-yt.h5" \
	    "Fusion Network with (a) & (b)=$(CH3)/report-fusion-rgb.h5" \
	    "LBP-TOP Fusion Network with (c) & (d)=$(CH3)/report-fusion-lbp.h5" \
	    "Fusion Multi-Stream Network=$(CH3)/report-ms.h5" | tee $(CH3)/table.md

# ----------------------------------------------------------------------------- chapter 4
# make chapter4 [DATA=~/data/CK+ DATASET=ckplus]  -> rows of Tables 4.1-4.3 the data allows:
# CNN part direct vs identity-pretrained (4.2.6), CNN-GRU vs CNN-LSTM on probability
# sequences of 5 frames (4.2.4.3), aligned vs unaligned faces (4.3.4), ONNX export and a
# headless run of the live system.  Identity pre-training uses the data's own subjects
# VGGFace cannot be fetched here, so by default stage 1 learns the identities of a separate
# synthetic population (other subjects than the test data's): point CH4_PRETRAIN at an
# aligned identity-labelled clips artifact (96x96) of your own for the real protocol.
CH4        := $(OUT)/ch4
CH4_SYNTH  ?= --subjects 12 --clips-per-class 3 --classes happy,sadness,surprise,anger --size 320x240 --seed 1
ifeq ($(DATA),)
# synthetic run: the small MobileNetV3 on 12 subjects x 4 expressions (+ neutral from the
# 4.2.7 split), batches of 16 with a cosine schedule; the GRU/LSTM learn on the frozen CNN's
# probabilities (fine-tuning the whole CNN-GRU on ~300 clips lost ~8 points on held-out
# subjects). About 10 CPU minutes.
CH4_NET    ?= mobilenet-v3-small
CH4_EPOCHS ?= 30
CH4_ID_EPOCHS ?= 3
CH4_SEQ_EPOCHS ?= 10
CH4_FOLDS  ?= 4
CH4_FRAME  ?= --frame last
CH4_BATCH  ?= --batch-size 16 --schedule cosine
CH4_SEQ    ?= --freeze
else
CH4_NET    ?= mobilenet-v3
CH4_EPOCHS ?= 30
endif
CH4_ID_EPOCHS ?= $(CH4_EPOCHS)
# static CNN frames of the 4.2.7 clips: the first and last 3 frames as neutral and peak
# (4.3.1); the synthetic smoke run uses each clip's last frame (3x fewer images)
CH4_FRAME  ?= --frame first-last
CH4_SEQ_EPOCHS ?= $(CH4_EPOCHS)
CH4_FOLDS  ?= 10
CH4_FOLD   ?= 0
CH4_CNN    ?=
CH4_BATCH  ?=
CH4_SEQ    ?=
CH4_PRETRAIN ?= $(CH4)/faces.h5
CH4_COMMON  = --fold $(CH4_FOLD) $(CH4_BATCH)

$(CH4)/raw.h5: | install
	mkdir -p $(CH4)
ifeq ($(DATA),)
	$(FERCLI) synth $(CH4_SYNTH) -o - | $(FERCLI) split - --folds $(CH4_FOLDS) --by subject -o $@
else
	$(FERCLI) ingest $(DATASET) $(DATA) -o - | $(FERCLI) split - --folds $(CH4_FOLDS) --by subject -o $@
endif
$(CH4)/faces.h5: | install
	mkdir -p $(CH4)
	$(FERCLI) synth --subjects 12 --clips-per-class 1 --size 320x240 --seed 99 -o - | $(FERCLI) align - --size 96 -o $@
$(CH4)/aligned.h5: $(CH4)/raw.h5
	$(FERCLI) align $< --size 96 -o $@
$(CH4)/unaligned.h5: $(CH4)/raw.h5
	$(FERCLI) align $< --size 96 --no-align -o $@
# 4.2.7: neutral->peak, neutral->neutral and peak->peak clips of 5 frames
$(CH4)/seq-%.h5: $(CH4)/%.h5
	$(FERCLI) resample $< --ckplus-split -n 5 -o $@

$(CH4)/identity.h5: $(CH4_PRETRAIN)
	$(FERCLI) train $(CH4_NET) $< --task identity --frame all --epochs $(CH4_ID_EPOCHS) $(CH4_CNN) $(CH4_BATCH) -o $@
$(CH4)/cnn-direct.h5: $(CH4)/seq-aligned.h5
	$(FERCLI) train $(CH4_NET) $< $(CH4_FRAME) --epochs $(CH4_EPOCHS) $(CH4_CNN) $(CH4_COMMON) -o $@
$(CH4)/cnn.h5: $(CH4)/seq-aligned.h5 $(CH4)/identity.h5
	$(FERCLI) train $(CH4_NET) $< --init-from $(CH4)/identity.h5 $(CH4_FRAME) --epochs $(CH4_EPOCHS) $(CH4_CNN) $(CH4_COMMON) -o $@
$(CH4)/gru.h5: $(CH4)/seq-aligned.h5 $(CH4)/cnn.h5
	$(FERCLI) train cnn-gru $< --init-from $(CH4)/cnn.h5 --input probs --frames 5 --config fc=0 --epochs $(CH4_SEQ_EPOCHS) $(CH4_SEQ) $(CH4_COMMON) -o $@
$(CH4)/lstm.h5: $(CH4)/seq-aligned.h5 $(CH4)/cnn.h5
	$(FERCLI) train cnn-gru $< --init-from $(CH4)/cnn.h5 --input probs --rnn lstm --frames 5 --config fc=0 --epochs $(CH4_SEQ_EPOCHS) $(CH4_SEQ) $(CH4_COMMON) -o $@
# 4.3.4 / Fig 4.2: trained on aligned + unaligned faces (two DATA artifacts: `train` joins them,
# keeping each clip's fold), tested on unaligned ones
$(CH4)/cnn-both.h5: $(CH4)/seq-aligned.h5 $(CH4)/seq-unaligned.h5 $(CH4)/identity.h5
	$(FERCLI) train $(CH4_NET) $(CH4)/seq-aligned.h5 $(CH4)/seq-unaligned.h5 --init-from $(CH4)/identity.h5 $(CH4_FRAME) --epochs $(CH4_EPOCHS) $(CH4_CNN) $(CH4_COMMON) -o $@
$(CH4)/gru-both.h5: $(CH4)/seq-aligned.h5 $(CH4)/seq-unaligned.h5 $(CH4)/cnn-both.h5
	$(FERCLI) train cnn-gru $(CH4)/seq-aligned.h5 $(CH4)/seq-unaligned.h5 --init-from $(CH4)/cnn-both.h5 --input probs --frames 5 --config fc=0 --epochs $(CH4_SEQ_EPOCHS) $(CH4_SEQ) $(CH4_COMMON) -o $@

$(CH4)/report-%.h5: $(CH4)/%.h5 $(CH4)/seq-aligned.h5
	$(FERCLI) evaluate $< $(CH4)/seq-aligned.h5 -o $@ --figure $(CH4)/confusion-$*.png > /dev/null
$(CH4)/report-unaligned-%.h5: $(CH4)/%.h5 $(CH4)/seq-unaligned.h5
	$(FERCLI) evaluate $< $(CH4)/seq-unaligned.h5 -o $@ > /dev/null
$(CH4)/live.onnx: $(CH4)/gru.h5
	$(FERCLI) export $< --onnx $@ --split
$(CH4)/live.jsonl: $(CH4)/gru-both.h5
	$(FERCLI) synth --subjects 2 --clips-per-class 1 --size 640x360 --seed 7 --video $(CH4)/live-input.mp4 -o $(CH4)/live-input.h5
	$(FERCLI) live $< --source $(CH4)/live-input.mp4 --headless > $@

chapter4: $(foreach r,cnn-direct cnn gru lstm,$(CH4)/report-$(r).h5) $(CH4)/report-unaligned-gru.h5 $(CH4)/report-unaligned-gru-both.h5 $(CH4)/live.onnx $(CH4)/live.jsonl
	$(BIN)/python examples/table.py --title "Tables 4.1-4.3 (this run)" \
	    "CNN part, direct initialisation=$(CH4)/report-cnn-direct.h5" \
	    "CNN part, identity pre-trained (4.2.6)=$(CH4)/report-cnn.h5" \
	    "CNN-GRU (PD sequence, 5 frames)=$(CH4)/report-gru.h5" \
	    "CNN-LSTM (PD sequence, 5 frames)=$(CH4)/report-lstm.h5" \
	    "CNN-GRU aligned-trained, unaligned test=$(CH4)/report-unaligned-gru.h5" \
	    "CNN-GRU aligned+unaligned-trained, unaligned test=$(CH4)/report-unaligned-gru-both.h5" | tee $(CH4)/table.md

# ----------------------------------------------------------------------------- chapter 5
# make chapter5 [DATA=~/data/cifar-10-batches-bin]  -> Tables 5.2/5.3 (CIFAR-10) rows:
# a large-r LB-MBNet, SE-weight pruning to a small r, rebuild, retrain, vs small r from scratch.
# With CH5_DATASET=fer2013 DATA=fer2013.csv CH5_SIZE=48 CH5_LARGE=100 CH5_SMALL=3: Tables 5.5/5.6.
CH5         := $(OUT)/ch5
ifeq ($(DATA),)
# synthetic smoke run: LB-MBNet-32 with quarter channel widths, r12 -> r3, few epochs
CH5_DEPTH   ?= 32
CH5_LARGE   ?= 12
CH5_SMALL   ?= 3
CH5_EPOCHS  ?= 40
CH5_MODEL   ?= --config 'channels=[16,8,16,32,64,128]' --batch-size 32
endif
CH5_DEPTH   ?= 59
CH5_LARGE   ?= 80
CH5_SMALL   ?= 6
CH5_EPOCHS  ?= 200
CH5_SIZE    ?= 32
CH5_MODEL   ?=
CH5_DATASET ?= cifar10
ifeq ($(DATA),)
CH5_SPLIT   ?= --fold 0
else
CH5_SPLIT   ?=
endif
CH5_SYNTH   ?= --subjects 12 --clips-per-class 3 --classes happy,sadness,surprise,anger --size 320x240 --color --seed 2
ch5_train    = --depth $(CH5_DEPTH) --epochs $(1) --size $(CH5_SIZE) $(CH5_MODEL) $(CH5_SPLIT)
CH5_TRAIN    = $(call ch5_train,$(CH5_EPOCHS))

$(CH5)/data.h5: | install
	mkdir -p $(CH5)
ifeq ($(DATA),)
	$(FERCLI) synth $(CH5_SYNTH) -o - | $(FERCLI) align - --size $(CH5_SIZE) --color -o - | $(FERCLI) split - --folds 4 --by subject -o $@
else
	$(FERCLI) ingest $(CH5_DATASET) $(DATA) -o $@
endif
$(CH5)/large.h5: $(CH5)/data.h5
	$(FERCLI) train lb-mbnet $< --expansion $(CH5_LARGE) $(CH5_TRAIN) -o $@
$(CH5)/small.h5: $(CH5)/data.h5
	$(FERCLI) train lb-mbnet $< --expansion $(CH5_SMALL) $(CH5_TRAIN) -o $@
# Segmented pruning (5.3.2): CH5_SEGMENTS="40 20 10" prunes r$(CH5_LARGE) -> r40, rebuilds and
# retrains it, prunes that to r20, ... and finally to r$(CH5_SMALL) (re-small.h5); each step is
# a row of Table 5.3. Empty (the default) is the one-shot prune r$(CH5_LARGE) -> r$(CH5_SMALL).
CH5_SEGMENTS ?=
CH5_SEG_EPOCHS ?= $(CH5_EPOCHS)
CH5_SEG_FROM := $(CH5_LARGE) $(CH5_SEGMENTS)
# "from:to" ratio pairs of the intermediate steps
CH5_PAIRS := $(join $(addsuffix :,$(wordlist 1,$(words $(CH5_SEGMENTS)),$(CH5_SEG_FROM))),$(CH5_SEGMENTS))
pair_from = $(word 1,$(subst :, ,$(1)))
pair_to   = $(word 2,$(subst :, ,$(1)))
ch5_model = $(if $(filter $(1),$(CH5_LARGE)),$(CH5)/large.h5,$(CH5)/re-r$(1).h5)
# One step: prune the r$(1) model to r$(2), rebuild, retrain for $(5) epochs; $(3) tags the
# pruning/rebuilt/plot files, $(4) names the retrained model.
define CH5_STEP
$(CH5)/pruning$(3).h5: $(call ch5_model,$(1)) $(CH5)/data.h5
	$$(FERCLI) prune $$^ --expansion $(2) --plot $(CH5)/se-weights$(3).png $(CH5_SPLIT) -o $$@
$(CH5)/rebuilt$(3).h5: $(CH5)/pruning$(3).h5
	$$(FERCLI) rebuild $$< -o $$@
$(CH5)/$(4).h5: $(CH5)/data.h5 $(CH5)/rebuilt$(3).h5
	$$(FERCLI) train lb-mbnet $$< --init-from $(CH5)/rebuilt$(3).h5 --expansion $(2) $(call ch5_train,$(5)) -o $$@
endef
$(foreach p,$(CH5_PAIRS),$(eval $(call CH5_STEP,$(call pair_from,$(p)),$(call pair_to,$(p)),-r$(call pair_to,$(p)),re-r$(call pair_to,$(p)),$(CH5_SEG_EPOCHS))))
$(eval $(call CH5_STEP,$(lastword $(CH5_SEG_FROM)),$(CH5_SMALL),,re-small,$(CH5_EPOCHS)))
$(CH5)/report-%.h5: $(CH5)/%.h5 $(CH5)/data.h5
	$(FERCLI) evaluate $< $(CH5)/data.h5 -o $@ > /dev/null

chapter5: $(foreach r,small large $(addprefix re-r,$(CH5_SEGMENTS)) re-small,$(CH5)/report-$(r).h5)
	$(BIN)/python examples/table.py --title "Tables 5.2/5.3 (this run)" \
	    "LB-MBNet-$(CH5_DEPTH)-r$(CH5_SMALL)=$(CH5)/report-small.h5" \
	    "LB-MBNet-$(CH5_DEPTH)-r$(CH5_LARGE)=$(CH5)/report-large.h5" \
	    $(foreach p,$(CH5_PAIRS),"Re-LB-MBNet-$(CH5_DEPTH)-r$(call pair_to,$(p)) (pruned from r$(call pair_from,$(p)))=$(CH5)/report-re-r$(call pair_to,$(p)).h5") \
	    "Re-LB-MBNet-$(CH5_DEPTH)-r$(CH5_SMALL) (pruned from r$(lastword $(CH5_SEG_FROM)))=$(CH5)/report-re-small.h5" | tee $(CH5)/table.md

bench: install
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# One GPU, one command (a CUDA torch first: make install TORCH=): engine vs bare loop and
# --compile img/s per model, chapter 5 on CUDA, resume, DDP/NCCL, evaluate, live -- a table.
gpu-check: install
	$(BIN)/python bench/gpu_check.py --require-gpu

clean:
	rm -rf $(OUT)

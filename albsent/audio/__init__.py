"""Audio in: decoding, preprocessing, segmentation, manifests, demo synthesis."""

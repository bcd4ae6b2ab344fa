"""Road segmentation: network factory, training and sliding-window inference."""

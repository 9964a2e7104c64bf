resnext_vs_resnet = (22 * 24 * 60 / 58) * (336 / 16)   # wall-clock ratio x GPU ratio
tpu_v3_gain_per_chip = 8 / (1024 / 256)
dgx2_gain_per_gpu = (2 / 1) / (16 / 8)

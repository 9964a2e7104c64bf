n_configs = 2 ** 17
gpu_years = n_configs * 1024 * 1 / 365        # 1,024 GPUs for one day per configuration
nas_years_on_one_gpu = 800 * 28 / 365

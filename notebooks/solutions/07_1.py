local.scale(3)
client.wait_for_workers(3)

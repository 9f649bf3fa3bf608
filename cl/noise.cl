/* noise kernels: being written. */

/* merge kernels: being written. */

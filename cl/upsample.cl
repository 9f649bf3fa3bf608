/* upsample kernels: being written. */

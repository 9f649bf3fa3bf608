/* metrics kernels: being written. */

/* activation kernels: being written. */

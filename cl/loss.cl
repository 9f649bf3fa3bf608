/* loss kernels: being written. */

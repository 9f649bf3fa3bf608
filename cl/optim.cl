/* optim kernels: being written. */

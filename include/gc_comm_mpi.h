/* gc_comm_mpi.h: the communicator on MPI (Open MPI from the distribution), for runs started by
 * `mpirun -np N`. Built when CMake finds MPI (GC_MPI); without it every function here says so
 * and a run is one process. */
#ifndef GC_COMM_MPI_H
#define GC_COMM_MPI_H

#include "gc_comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the library was built with MPI. */
int gc_comm_mpi_available(void);
/* 1 when this process was started by mpirun (its environment says so), so that a caller
 * creates the MPI communicator only then and a plain run stays one process. */
int gc_comm_mpi_launched(void);
/* Initialize MPI (once per process) and make a communicator over every process of the job
 * (a duplicate of MPI_COMM_WORLD whose errors are returned, not fatal). Collectives split
 * messages above 2^31 - 1 elements; the gradient all-reduce goes in buckets through a buffer
 * allocated here. GC_ERR_UNSUPPORTED when built without MPI. */
gc_status gc_comm_mpi_create(gc_comm *out);
/* Free the communicator and finalize MPI. */
void gc_comm_mpi_free(gc_comm *c);
/* For tests: split every message above n elements (0 restores the default, 2^31 - 1), so the
 * splitting is exercised without 8 GiB messages. */
void gc_comm_mpi_set_max_count(size_t n);

#ifdef __cplusplus
}
#endif

#endif /* GC_COMM_MPI_H */

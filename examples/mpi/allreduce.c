/* MPI allreduce check: every rank contributes rank+1; the sum must be
 * size*(size+1)/2 on every rank. Run as the launcher's `mpirun` target of an
 * MPIJob (see mpijob.yaml). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  long mine = rank + 1, sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  long expected = (long)size * (size + 1) / 2;
  const char* node = getenv("SLURMD_NODENAME");  /* under Slurm: the node, which need not be the host */
  printf("rank %d of %d on %s%s%s: allreduce sum %ld (expected %ld)\n", rank, size, host, node ? " node " : "",
         node ? node : "", sum, expected);
  if (rank == 0) printf("world_size=%d allreduce_sum=%ld\n", size, sum);
  fflush(stdout);
  MPI_Finalize();
  return sum == expected ? 0 : 1;
}

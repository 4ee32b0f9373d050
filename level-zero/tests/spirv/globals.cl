// Program-scope variables (OpenCL C 2.0): initialised tables in the
// constant and global address spaces, zero-initialised ones, a struct, a
// pointer to another variable, a variable without linkage, and kernels that
// read and write them.
typedef struct {
  int a;
  float b;
  long c;
  char tag[5];
} record;

constant int table[8] = {2, 3, 5, 7, 11, 13, 17, 19};
global record rec = {-4, 2.5f, 1234567890123L, "rec!"};
global int zeros[300];
global int counter = 7;
global int scale = 1;
global int* counter_ptr = &counter;
global int* table_end = &zeros[299];
static global int hidden = 41;  // no linkage: not exported

// out[i] = table[i % 8] + zeros[i % 300], then the struct, the pointers and
// the others.
kernel void read_tables(global long* out, int n) {
  const int i = get_global_id(0);
  if (i < n) out[i] = table[i % 8] + zeros[i % 300];
  if (i == 0) {
    out[n] = rec.a;
    out[n + 1] = (long)(rec.b * 10.0f);
    out[n + 2] = rec.c;
    out[n + 3] = rec.tag[0] + rec.tag[3];
    out[n + 4] = *counter_ptr;
    out[n + 5] = table_end - zeros;
    out[n + 6] = hidden;
    // counter itself too: SPIR-V 1.4 lists every variable a kernel reaches
    // (counter_ptr's initializer included) in its interface, and the
    // translator lists only those the kernel names.
    out[n + 7] = counter;
  }
}

// Every item adds one to counter; item 0 also stores v in rec.a and bumps
// the hidden variable.
kernel void bump(int v) {
  atomic_add(&counter, 1);
  if (get_global_id(0) == 0) {
    rec.a = v;
    hidden += 1;
  }
}

// out[i] = i * scale (scale is set by the host).
kernel void scaled(global int* out) {
  const int i = get_global_id(0);
  out[i] = i * scale;
}

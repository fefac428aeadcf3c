/* A CPython extension module whose two functions take two module-level pthread mutexes in
 * opposite order (AB/BA). Built at generation time:
 *   cc -shared -fPIC -g -O0 -I$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])') \
 *      -o _ledger$(EXT_SUFFIX) ledger.c -lpthread
 * Each function releases the GIL while it holds and waits, so two Python threads calling them
 * deadlock inside one Celery pool child. The mutexes are taken in the functions themselves, not
 * passed as arguments, so no frame of a blocked thread names the mutex it holds. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t ledger_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t audit_mutex = PTHREAD_MUTEX_INITIALIZER;

static PyObject *post_ledger(PyObject *self, PyObject *unused)
{
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&ledger_mutex);
    usleep(500 * 1000);               /* long enough for the other caller to take its first mutex */
    pthread_mutex_lock(&audit_mutex); /* never returns once the cycle has formed */
    pthread_mutex_unlock(&audit_mutex);
    pthread_mutex_unlock(&ledger_mutex);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *post_audit(PyObject *self, PyObject *unused)
{
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&audit_mutex);
    usleep(500 * 1000);
    pthread_mutex_lock(&ledger_mutex);
    pthread_mutex_unlock(&ledger_mutex);
    pthread_mutex_unlock(&audit_mutex);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"post_ledger", post_ledger, METH_NOARGS, "ledger_mutex, then audit_mutex"},
    {"post_audit", post_audit, METH_NOARGS, "audit_mutex, then ledger_mutex"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ledger", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ledger(void)
{
    return PyModule_Create(&module);
}

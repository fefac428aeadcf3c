/* Two pthread mutexes taken in opposite order (AB/BA) by two callers.
 * Built at generation time: cc -shared -fPIC -g -O0 -o libdeadlock.so deadlock.c -lpthread
 * Each function is called from its own Python thread through ctypes (CDLL releases the GIL),
 * so the deadlock is between two native lock waits inside one Celery pool child. */
#include <pthread.h>
#include <unistd.h>

pthread_mutex_t mutex_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t mutex_b = PTHREAD_MUTEX_INITIALIZER;

static void hold_then_take(pthread_mutex_t *first, pthread_mutex_t *second)
{
    pthread_mutex_lock(first);
    usleep(500 * 1000);           /* long enough for the other caller to take its first mutex */
    pthread_mutex_lock(second);   /* never returns once the cycle has formed */
    pthread_mutex_unlock(second);
    pthread_mutex_unlock(first);
}

int take_a_then_b(void)
{
    hold_then_take(&mutex_a, &mutex_b);
    return 0;
}

int take_b_then_a(void)
{
    hold_then_take(&mutex_b, &mutex_a);
    return 0;
}

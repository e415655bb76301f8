/* What a forked child does to itself before execve: see childproc.h. */
#include "childproc.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

void childproc_close_from(int first_fd, int max_fd)
{
    if (close_range((unsigned)first_fd, ~0U, 0) < 0) {
        for (int fd = first_fd; fd < max_fd; fd++)
            close(fd);
    }
}

void childproc_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP and gaps */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

#define _GNU_SOURCE
#include "cedgenet.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

// Runs `body` with the calling thread inside the namespace, then moves it back.
static int in_netns(const char *netns_path, int (*body)(const void *), const void *argument) {
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -errno;
    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        int error = errno;
        close(home);
        return -error;
    }
    int result;
    if (setns(target, CLONE_NEWNET) < 0) {
        result = -errno;
    } else {
        result = body(argument);
        if (setns(home, CLONE_NEWNET) < 0 && result >= 0) {
            // Cannot happen for a namespace we came from; never leave the thread elsewhere quietly.
            if (result > 0) close(result);
            result = -errno;
        }
    }
    close(target);
    close(home);
    return result;
}

static int open_tun(const void *argument) {
    const char *name = argument;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int cedgenet_tun_open(const char *netns_path, const char *name) {
    return in_netns(netns_path, open_tun, name);
}

int cedgenet_enter_netns(const char *netns_path) {
    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) return -errno;
    int result = setns(target, CLONE_NEWNET) < 0 ? -errno : 0;
    close(target);
    return result;
}

struct sysctl_write {
    const char *path;
    const char *value;
};

static int write_sysctl(const void *argument) {
    const struct sysctl_write *write_request = argument;
    int fd = open(write_request->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t length = strlen(write_request->value);
    ssize_t written = write(fd, write_request->value, length);
    int result = written == (ssize_t)length ? 0 : -(written < 0 ? errno : EIO);
    close(fd);
    return result;
}

int cedgenet_sysctl_in(const char *netns_path, const char *proc_path, const char *value) {
    struct sysctl_write request = {proc_path, value};
    return in_netns(netns_path, write_sysctl, &request);
}

int cedgenet_spawn(const char *path, char *const argv[], char *const envp[], const char *directory, int in_fd, int out_fd,
    int err_fd, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    result = posix_spawnattr_init(&attributes);
    if (result != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return result;
    }
    int sources[3] = {in_fd, out_fd, err_fd};
    for (int target = 0; target < 3 && result == 0; target++) {
        if (sources[target] >= 0) {
            result = posix_spawn_file_actions_adddup2(&actions, sources[target], target);
        } else {
            result = posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0);
        }
    }
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (result == 0 && directory != NULL) result = posix_spawn_file_actions_addchdir_np(&actions, directory);
    // A thread of a dispatch or NIO pool blocks most signals and the runtime ignores SIGPIPE; a
    // child would inherit both, and then not end on SIGTERM. It starts with none blocked, all default.
    sigset_t none, every;
    sigemptyset(&none);
    sigfillset(&every);
    if (result == 0) result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &none);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &every);
    if (result == 0) result = posix_spawnattr_setpgroup(&attributes, 0);
    if (result == 0) result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return result;
}

#include <stdio.h>
#include <sys/wait.h>

// Writes all of `text` to the file at `path`; 0 or an errno value. Async-signal-safe.
static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    size_t length = strlen(text);
    ssize_t written = write(fd, text, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : EIO);
    close(fd);
    return error;
}

// In a forked child, before exec: no signal blocked, none ignored (see cedgenet_spawn).
static void plain_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int number = 1; number < NSIG; number++) signal(number, SIG_DFL);
}

// In a forked child: reports `error` to the parent through `report` and ends.
static void child_failed(int report, int error) {
    ssize_t ignored = write(report, &error, sizeof error);
    (void)ignored;
    _exit(127);
}

// Waits for a forked child's exec: 0 when it ran, else the errno the child reported.
static int await_exec(int report, pid_t child) {
    int error = 0;
    ssize_t got;
    do {
        got = read(report, &error, sizeof error);
    } while (got < 0 && errno == EINTR);
    close(report);
    if (got == (ssize_t)sizeof error) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return error;
    }
    return 0;
}

// Runs a map helper (newuidmap, newgidmap) for `child`: 0 when it succeeded, else EPROTO.
static int run_map_helper(char *const helper[], pid_t child) {
    char pid_text[16];
    snprintf(pid_text, sizeof pid_text, "%d", (int)child);
    int count = 0;
    while (helper[count] != NULL) count++;
    char *arguments[count + 1];
    for (int index = 0; index < count; index++) arguments[index] = index == 1 ? pid_text : helper[index];
    arguments[count] = NULL;
    pid_t running;
    extern char **environ;
    if (posix_spawn(&running, arguments[0], NULL, NULL, arguments, environ) != 0) return EPROTO;
    int status;
    while (waitpid(running, &status, 0) < 0) {
        if (errno != EINTR) return EPROTO;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EPROTO;
}

int cedgenet_spawn_private(const char *path, char *const argv[], char *const envp[], unsigned uid, unsigned gid,
    char *const uid_helper[], char *const gid_helper[], pid_t *pid) {
    char uid_map[64];
    char gid_map[64];
    snprintf(uid_map, sizeof uid_map, "0 %u 1\n", uid);
    snprintf(gid_map, sizeof gid_map, "0 %u 1\n", gid);
    int helpers = uid_helper != NULL && gid_helper != NULL;
    int report[2];
    int ready[2];
    int go[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return error;
    }
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
        return error;
    }
    if (child == 0) {
        close(report[0]);
        close(ready[0]);
        close(go[1]);
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0) child_failed(report[1], errno);
        int error = 0;
        if (helpers) {
            // The parent maps the subordinate ids (newuidmap is setuid root); wait until it has.
            char byte = 1;
            if (write(ready[1], &byte, 1) != 1) _exit(127);
            if (read(go[0], &byte, 1) != 1) _exit(127);
        } else {
            error = write_file("/proc/self/setgroups", "deny");
            if (error == 0) error = write_file("/proc/self/uid_map", uid_map);
            if (error == 0) error = write_file("/proc/self/gid_map", gid_map);
        }
        // Mounts made inside (the namespace folders) stay inside.
        if (error == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) error = errno;
        if (error != 0) child_failed(report[1], error);
        plain_signals();
        execve(path, argv, envp);
        child_failed(report[1], errno);
    }
    close(report[1]);
    close(ready[1]);
    close(go[0]);
    int mapped = 0;
    if (helpers) {
        char byte;
        ssize_t got;
        do {
            got = read(ready[0], &byte, 1);
        } while (got < 0 && errno == EINTR);
        if (got == 1) {
            mapped = run_map_helper(uid_helper, child);
            if (mapped == 0) mapped = run_map_helper(gid_helper, child);
            if (mapped == 0 && write(go[1], &byte, 1) != 1) mapped = EPROTO;
        }
    }
    close(ready[0]);
    close(go[1]);
    int error = await_exec(report[0], child);
    if (mapped != 0) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return mapped;
    }
    if (error == 0) *pid = child;
    return error;
}

// Whether the namespace open at `fd` is the one at `own` (a /proc/self/ns file).
static int same_namespace(int fd, const char *own) {
    struct stat mine, theirs;
    int self = open(own, O_RDONLY | O_CLOEXEC);
    if (self < 0) return 0;
    int same = fstat(self, &mine) == 0 && fstat(fd, &theirs) == 0 && mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
    close(self);
    return same;
}

int cedgenet_spawn_entered(pid_t target, const char *netns_path, const char *path, char *const argv[], pid_t *pid) {
    char user_path[64];
    char net_path[64];
    snprintf(user_path, sizeof user_path, "/proc/%d/ns/user", (int)target);
    snprintf(net_path, sizeof net_path, "/proc/%d/ns/net", (int)target);
    char mnt_path[64];
    snprintf(mnt_path, sizeof mnt_path, "/proc/%d/ns/mnt", (int)target);
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return error;
    }
    if (child == 0) {
        close(report[0]);
        if (target > 0) {
            int user = open(user_path, O_RDONLY | O_CLOEXEC);
            int mnt = open(mnt_path, O_RDONLY | O_CLOEXEC);
            int net = open(net_path, O_RDONLY | O_CLOEXEC);
            if (user < 0 || mnt < 0 || net < 0) child_failed(report[1], errno);
            // Entering one's own namespace is refused (EINVAL) for a user namespace: only others are joined.
            if (!same_namespace(user, "/proc/self/ns/user") && setns(user, CLONE_NEWUSER) != 0) child_failed(report[1], errno);
            if (!same_namespace(mnt, "/proc/self/ns/mnt")) {
                // Joining a mount namespace moves to its root: come back to the same folder there.
                char here[4096];
                char *folder = getcwd(here, sizeof here);
                if (setns(mnt, CLONE_NEWNS) != 0) child_failed(report[1], errno);
                if (folder == NULL || chdir(folder) != 0) {
                    int ignored = chdir("/");
                    (void)ignored;
                }
            }
            if (netns_path == NULL && setns(net, CLONE_NEWNET) != 0) child_failed(report[1], errno);
        }
        if (netns_path != NULL) {
            // Opened after the mount namespace is joined: a private network's namespaces are named there only.
            int net = open(netns_path, O_RDONLY | O_CLOEXEC);
            if (net < 0 || setns(net, CLONE_NEWNET) != 0) child_failed(report[1], errno);
        }
        plain_signals();
        execvp(path, argv);
        child_failed(report[1], errno);
    }
    close(report[1]);
    int error = await_exec(report[0], child);
    if (error == 0) *pid = child;
    return error;
}

#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

int cedgenet_packet_open(const char *device) {
    // Protocol 0 receives nothing until bound, so no frame of another device slips in first.
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq lookup;
    memset(&lookup, 0, sizeof lookup);
    strncpy(lookup.ifr_name, device, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &lookup) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    int index = lookup.ifr_ifindex;
    int one = 1;
    int buffer = 4 << 20;
    struct sockaddr_ll address;
    memset(&address, 0, sizeof address);
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = index;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer) != 0 ||
        bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

static int ethtool_set(int fd, const char *device, unsigned command, unsigned value) {
    struct ethtool_value setting = {command, value};
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, device, IFNAMSIZ - 1);
    request.ifr_data = (char *)&setting;
    return ioctl(fd, SIOCETHTOOL, &request) == 0 ? 0 : -errno;
}

static int whole_frames(const void *argument) {
    const char *device = argument;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    // Without checksum offload the kernel also stops sending segmentation-offloaded super-frames.
    int result = ethtool_set(fd, device, ETHTOOL_STXCSUM, 0);
    if (result == 0) ethtool_set(fd, device, ETHTOOL_SGSO, 0);
    close(fd);
    return result;
}

int cedgenet_whole_frames(const char *netns_path, const char *device) {
    return in_netns(netns_path, whole_frames, device);
}

int cedgenet_accept(int fd, struct sockaddr *address, socklen_t *length) {
    return accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void cedgenet_name_thread(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

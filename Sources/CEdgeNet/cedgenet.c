#define _GNU_SOURCE
#include "cedgenet.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
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
    if (result == 0) result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
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

int cedgenet_spawn_private(const char *path, char *const argv[], char *const envp[], unsigned uid, unsigned gid, pid_t *pid) {
    char uid_map[64];
    char gid_map[64];
    snprintf(uid_map, sizeof uid_map, "0 %u 1\n", uid);
    snprintf(gid_map, sizeof gid_map, "0 %u 1\n", gid);
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
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) child_failed(report[1], errno);
        int error = write_file("/proc/self/setgroups", "deny");
        if (error == 0) error = write_file("/proc/self/uid_map", uid_map);
        if (error == 0) error = write_file("/proc/self/gid_map", gid_map);
        if (error != 0) child_failed(report[1], error);
        execve(path, argv, envp);
        child_failed(report[1], errno);
    }
    close(report[1]);
    int error = await_exec(report[0], child);
    if (error == 0) *pid = child;
    return error;
}

int cedgenet_spawn_entered(pid_t target, const char *netns_path, const char *path, char *const argv[], pid_t *pid) {
    char user_path[64];
    char net_path[64];
    snprintf(user_path, sizeof user_path, "/proc/%d/ns/user", (int)target);
    snprintf(net_path, sizeof net_path, "/proc/%d/ns/net", (int)target);
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
        if (netns_path != NULL) {
            int net = open(netns_path, O_RDONLY | O_CLOEXEC);
            if (net < 0 || setns(net, CLONE_NEWNET) != 0) child_failed(report[1], errno);
        } else if (target > 0) {
            int user = open(user_path, O_RDONLY | O_CLOEXEC);
            int net = open(net_path, O_RDONLY | O_CLOEXEC);
            if (user < 0 || net < 0) child_failed(report[1], errno);
            // Entering one's own user namespace is refused (EINVAL): only a different one is joined.
            int self = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
            struct stat mine, theirs;
            if (self >= 0 && fstat(self, &mine) == 0 && fstat(user, &theirs) == 0 &&
                (mine.st_ino != theirs.st_ino || mine.st_dev != theirs.st_dev)) {
                if (setns(user, CLONE_NEWUSER) != 0) child_failed(report[1], errno);
            }
            if (setns(net, CLONE_NEWNET) != 0) child_failed(report[1], errno);
        }
        execvp(path, argv);
        child_failed(report[1], errno);
    }
    close(report[1]);
    int error = await_exec(report[0], child);
    if (error == 0) *pid = child;
    return error;
}

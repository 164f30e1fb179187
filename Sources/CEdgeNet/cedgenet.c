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

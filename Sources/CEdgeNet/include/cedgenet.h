#ifndef CEDGENET_H
#define CEDGENET_H

/// Opens a TUN device (IFF_TUN | IFF_NO_PI, non-blocking) named `name` inside the network
/// namespace at `netns_path`, leaving the calling thread in its own namespace. Returns the
/// file descriptor, or -errno.
int cedgenet_tun_open(const char *netns_path, const char *name);

/// Moves the calling thread into the network namespace at `netns_path`. Threads it starts
/// afterwards are created there too. Returns 0 or -errno.
int cedgenet_enter_netns(const char *netns_path);

/// Writes `value` to a /proc/sys file as seen from inside the network namespace at
/// `netns_path` (per-namespace sysctls such as net.ipv4.ip_forward). Returns 0 or -errno.
int cedgenet_sysctl_in(const char *netns_path, const char *proc_path, const char *value);

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (glibc declares accept4 only under _GNU_SOURCE).
/// Returns the descriptor, or -1 with errno set.
int cedgenet_accept(int fd, struct sockaddr *address, socklen_t *length);

/// Names the calling thread (at most 15 bytes are kept), as `ps -L` and /proc/PID/task/TID/comm show it.
void cedgenet_name_thread(const char *name);

/// Starts `path` with `argv` and `envp` (NULL-terminated) in its own process group, standard
/// input, output and error taken from the given descriptors (-1: /dev/null), in `directory`
/// when not NULL. Every other descriptor is closed in the child, whatever its flags. Returns
/// 0 and sets `pid`, or an errno value.
int cedgenet_spawn(const char *path, char *const argv[], char *const envp[], const char *directory, int in_fd, int out_fd,
    int err_fd, pid_t *pid);

/// Starts `path` in a new user namespace and new network and mount namespaces owned by it, in
/// which the calling user (`uid`, `gid`) is root: a private network without privileges on the
/// host, where mounts (such as the folders naming network namespaces) stay private. Returns
/// 0 and sets `pid` once the program runs, or an errno value (EPERM or ENOSPC where user
/// namespaces are disabled).
/// With `uid_helper` and `gid_helper` (argument vectors of newuidmap and newgidmap, the second
/// entry left for the child's pid) the maps are written by those helpers instead, so that
/// subordinate ids are mapped too; EPROTO when a helper fails.
int cedgenet_spawn_private(const char *path, char *const argv[], char *const envp[], unsigned uid, unsigned gid,
    char *const uid_helper[], char *const gid_helper[], pid_t *pid);

/// Starts `path` (looked up in PATH) inside the user, mount and network namespaces of process
/// `target` (none entered when `target` is 0), in the network namespace at `netns_path` instead
/// when that is not NULL (a path seen in the target's mount namespace). Returns 0 and sets `pid`,
/// or an errno value.
int cedgenet_spawn_entered(pid_t target, const char *netns_path, const char *path, char *const argv[], pid_t *pid);

/// A packet socket (AF_PACKET, every protocol, non-blocking) bound to `device` in the calling
/// thread's network namespace, not reading back what it sends. Returns the descriptor or -errno.
int cedgenet_packet_open(const char *device);

/// Turns off transmit checksum and segmentation offload on `device` inside the namespace at
/// `netns_path`, so frames read from its veth peer are complete packets with checksums. Returns
/// 0 or -errno.
int cedgenet_whole_frames(const char *netns_path, const char *device);

#endif

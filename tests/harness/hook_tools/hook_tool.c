/*
 * Every Juju hook tool at once, compiled: the fast twin of hook_tool.py.
 *
 * Same protocol as hook_tool.py (one JSON request over the stand-in's Unix
 * socket: token, tool name, arguments, standard input for `--file -`), but
 * it asks for a framed reply ("<code> <stdout bytes> <stderr bytes>\n" then
 * both streams), so it needs no JSON parser. Why it exists: a hook of the LXD
 * charm calls 25 to 30 tools (juju-log for every log record, relation-ids
 * for every endpoint...), and a Python interpreter per call cost 30 to 90 ms
 * on a loaded machine, most of a hook's time. Juju's own tools are one small
 * binary too. unit_agent.py compiles this with the system's C compiler when
 * it has one, and uses hook_tool.py when it has not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *buf;
static size_t len, cap;

static void put(const char *s, size_t n) {
    if (len + n + 1 > cap) {
        cap = (len + n + 1) * 2 + 4096;
        buf = realloc(buf, cap);
        if (!buf) exit(2);
    }
    memcpy(buf + len, s, n);
    len += n;
}

static void put_str(const char *s) { put(s, strlen(s)); }

static void put_json(const char *s, size_t n) {
    char escape[8];
    put("\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') put("\\\"", 2);
        else if (c == '\\') put("\\\\", 2);
        else if (c < 0x20) {
            snprintf(escape, sizeof escape, "\\u%04x", c);
            put(escape, 6);
        } else put((const char *)&c, 1);
    }
    put("\"", 1);
}

static char *read_all(int fd, size_t *out_len) {
    size_t size = 0, room = 65536;
    char *data = malloc(room);
    ssize_t got;
    if (!data) exit(2);
    while ((got = read(fd, data + size, room - size)) > 0) {
        size += (size_t)got;
        if (size == room) {
            room *= 2;
            data = realloc(data, room);
            if (!data) exit(2);
        }
    }
    data[size] = '\0'; /* room is always left: size < room here */
    *out_len = size;
    return data;
}

static void write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t done = write(fd, s, n);
        if (done <= 0) exit(2);
        s += done;
        n -= (size_t)done;
    }
}

int main(int argc, char **argv) {
    const char *tool = strrchr(argv[0], '/');
    const char *socket_path = getenv("UNIT_AGENT_SOCKET");
    const char *token = getenv("UNIT_AGENT_TOKEN");
    int wants_stdin = 0, has_file = 0, has_dash = 0;
    tool = tool ? tool + 1 : argv[0];
    if (!socket_path) {
        fputs("ERROR UNIT_AGENT_SOCKET is not set\n", stderr);
        return 1;
    }
    put_str("{\"reply\":\"framed\",\"token\":");
    put_json(token ? token : "", token ? strlen(token) : 0);
    put_str(",\"tool\":");
    put_json(tool, strlen(tool));
    put_str(",\"args\":[");
    for (int i = 1; i < argc; i++) {
        if (i > 1) put(",", 1);
        put_json(argv[i], strlen(argv[i]));
        if (strcmp(argv[i], "--file") == 0) has_file = 1;
        if (strcmp(argv[i], "-") == 0) has_dash = 1;
        if (strcmp(argv[i], "--file=-") == 0) has_file = has_dash = 1;
    }
    wants_stdin = has_file && has_dash;
    put_str("],\"stdin\":");
    if (wants_stdin) {
        size_t n;
        char *data = read_all(0, &n);
        put_json(data, n);
        free(data);
    } else {
        put_str("null");
    }
    put_str("}\n");

    int conn = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (conn < 0 || strlen(socket_path) >= sizeof address.sun_path) return 2;
    strcpy(address.sun_path, socket_path);
    if (connect(conn, (struct sockaddr *)&address, sizeof address) < 0) {
        perror("ERROR cannot reach the unit-agent stand-in");
        return 2;
    }
    write_all(conn, buf, len);
    shutdown(conn, SHUT_WR);
    size_t n;
    char *reply = read_all(conn, &n);
    close(conn);
    int code;
    size_t out_len, err_len, header;
    char *end = memchr(reply, '\n', n);
    if (!end || sscanf(reply, "%d %zu %zu", &code, &out_len, &err_len) != 3 ||
        (header = (size_t)(end - reply) + 1) + out_len + err_len > n) {
        fputs("ERROR garbled reply from the unit-agent stand-in\n", stderr);
        return 2;
    }
    write_all(1, reply + header, out_len);
    write_all(2, reply + header + out_len, err_len);
    return code;
}

# A python3-dbus service for examples/dbus_fd.ts: on the bus at argv[1] it owns
# org.bsd.Test and exports /org/bsd/Test with one method, ReadFd(h) -> s, which
# reads the descriptor it was given to its end and returns what it read.
# Run with the system python (python3-dbus and python3-gi). Prints "ready".
import os
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(f"unix:path={sys.argv[1]}")


class Test(dbus.service.Object):
    @dbus.service.method("org.bsd.Test", in_signature="h", out_signature="s")
    def ReadFd(self, fd):
        n = fd.take()
        chunks = []
        try:
            while True:
                chunk = os.read(n, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(n)
        return b"".join(chunks).decode()


name = dbus.service.BusName("org.bsd.Test", bus)
Test(bus, "/org/bsd/Test")
print("ready", flush=True)
GLib.MainLoop().run()

#include "daemon.hpp"

int main(int argc, char **argv)
{
	return r3mapd::Daemon::main(argc, argv);
}

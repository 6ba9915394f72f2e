from cnnprof.cli.app import main

main()

from fer_batch.cli import main

main()
